import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chat, contentOf, startSim, userMessages } from './helpers.js';

function judgePrompt(a: string, b: string): string {
  return [
    'You are a strict judge. Compare the two answers and give your verdict as JSON.',
    '',
    '[The Start of Assistant A\'s Answer]',
    a,
    '[The End of Assistant A\'s Answer]',
    '',
    '[The Start of Assistant B\'s Answer]',
    b,
    '[The End of Assistant B\'s Answer]',
  ].join('\n');
}

interface Verdict {
  winner: string;
  reason: string;
}

test('the judge prefers the longer answer, calls equal answers a tie and is consistent under swap', async (t) => {
  const { url } = await startSim(t, { profile: 'judge', overrides: { timeScale: 0 } });
  const verdict = async (prompt: string): Promise<Verdict> =>
    JSON.parse(contentOf(await chat(url, { messages: userMessages(prompt) }))) as Verdict;
  const short = 'Kafka keeps offsets.';
  const long = 'Kafka keeps committed offsets per consumer group in an internal topic.';

  assert.equal((await verdict(judgePrompt(short, long))).winner, 'B');
  assert.equal((await verdict(judgePrompt(long, short))).winner, 'A');
  assert.equal((await verdict(judgePrompt(long, `  ${long}\n`))).winner, 'tie');
  const equalLength = [await verdict(judgePrompt('red green blue', 'one two three')), await verdict(judgePrompt('one two three', 'red green blue'))];
  assert.notEqual(equalLength[0]?.winner, equalLength[1]?.winner);
  assert.equal(typeof (await verdict(judgePrompt(short, long))).reason, 'string');
});

test('a judge with position bias 1 answers A whatever the answers, and ordinary chat is not judged', async (t) => {
  const { url } = await startSim(t, { profile: 'judge', overrides: { timeScale: 0, judge: { positionBias: 1 } } });

  const winners = await Promise.all(
    ['x', 'a much longer second answer here'].map(async (b) =>
      (JSON.parse(contentOf(await chat(url, { messages: userMessages(judgePrompt('short', b)) }))) as Verdict).winner,
    ),
  );
  const chatAnswer = contentOf(await chat(url, { messages: userMessages('Just say hello.') }));

  assert.deepEqual(winners, ['A', 'A']);
  assert.throws(() => JSON.parse(chatAnswer) as unknown);
});

test('a judge whose bias decides only close calls still lets a clearly better answer win from either position', async (t) => {
  const { url } = await startSim(t, { profile: 'judge', overrides: { timeScale: 0, judge: { positionBias: 1, closeCallWords: 1 } } });
  const winner = async (a: string, b: string) => (JSON.parse(contentOf(await chat(url, { messages: userMessages(judgePrompt(a, b)) }))) as Verdict).winner;
  const long = 'Kafka keeps committed offsets per consumer group in an internal topic.';

  assert.equal(await winner('Kafka keeps offsets.', long), 'B', 'eight more words: not a close call');
  assert.equal(await winner(long, `  ${long}\n`), 'A', 'a tie is the closest call');
  assert.equal(await winner('red green blue', 'one two three four'), 'A', 'one word apart, within closeCallWords');
});

test('the judge finds answers in XML tags and in line headings', async (t) => {
  const { url } = await startSim(t, { profile: 'judge', overrides: { timeScale: 0 } });
  const xml = 'Which response is better?\n<response_a>tiny</response_a>\n<response_b>a far more detailed reply</response_b>';
  const headings = 'Decide whether Answer A or Answer B is better.\n\nAnswer A:\nthe long and careful answer here\n\nAnswer B:\nshort one\n';

  const xmlVerdict = JSON.parse(contentOf(await chat(url, { messages: userMessages(xml) }))) as Verdict;
  const headingVerdict = JSON.parse(contentOf(await chat(url, { messages: userMessages(headings) }))) as Verdict;

  assert.equal(xmlVerdict.winner, 'B');
  assert.equal(headingVerdict.winner, 'A');
});
