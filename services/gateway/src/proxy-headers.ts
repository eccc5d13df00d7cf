const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length']);

/**
 * The end-to-end headers of a message, as a proxy forwards them: hop-by-hop headers, and any
 * header the `Connection` header names, stay on their own hop.
 */
export function endToEndHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const connection = headers.connection;
  const named = new Set(
    (Array.isArray(connection) ? connection.join(',') : (connection ?? ''))
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter((name) => name.length > 0),
  );
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    // Arrays stay arrays: repeated headers such as set-cookie must not be joined.
    out[name] = value;
  }
  return out;
}

/**
 * The end-to-end headers of an answer, plus its `content-length` when the upstream sent one
 * without chunking: the user gets the same framing, not a chunked re-encoding.
 */
export function relayedResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out = endToEndHeaders(headers);
  const length = headers['content-length'];
  if (typeof length === 'string' && headers['transfer-encoding'] === undefined) out['content-length'] = length;
  return out;
}

