const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Escapes text for an HTML or SVG text node or a quoted attribute value. Every string the HTML
 * report did not write itself (experiment and arm names, request ids, notes, reasons, answers)
 * goes through it: an answer can hold `<script>` or markup meant to fetch something.
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ENTITIES[char]!);
}
