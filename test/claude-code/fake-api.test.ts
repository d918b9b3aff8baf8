/**
 * The fake Messages API on its own (no Claude Code needed): the streamed form is the real API's
 * event sequence with usage split between message_start and message_delta, the JSON form carries
 * the same usage, markers pick steps per conversation, compaction is recognised, and what it
 * billed is recorded per session and model.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeAnthropicApi, classify, locate, madeUpUsage } from './support/fake-api';

let api: FakeAnthropicApi;
let url: string;

beforeAll(async () => {
  api = new FakeAnthropicApi();
  const listening = createServer();
  await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
  const { port } = listening.address() as { port: number };
  await api.attach(listening);
  url = `http://127.0.0.1:${port}/v1/messages?beta=true`;
});

afterAll(async () => {
  await api.close();
});

const post = (body: unknown, session = 's-1') =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-claude-code-session-id': session }, body: JSON.stringify(body) });

function events(text: string): Array<{ event: string; data: Record<string, unknown> }> {
  return text
    .split('\n\n')
    .filter((chunk) => chunk.trim())
    .map((chunk) => {
      const [eventLine, dataLine] = chunk.split('\n');
      return { event: eventLine!.replace('event: ', ''), data: JSON.parse(dataLine!.replace('data: ', '')) as Record<string, unknown> };
    });
}

describe('fake Anthropic Messages API', () => {
  it('streams the real event sequence, tool_use as input_json_delta, final usage in message_delta', async () => {
    api.script('t1', [
      {
        content: [{ type: 'text', text: 'Running.' }, { type: 'tool_use', name: 'Bash', input: { command: 'ls' } }],
        usage: { input_tokens: 10, output_tokens: 20, cache_read_input_tokens: 30, cache_write_5m_tokens: 4, cache_write_1h_tokens: 5 },
      },
    ]);
    const res = await post({ model: 'claude-opus-5-5', stream: true, messages: [{ role: 'user', content: '[[t1]] go' }] });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('request-id')).toMatch(/^req_/);
    const seq = events(await res.text());
    expect(seq.map((e) => e.event)).toEqual([
      'message_start',
      'ping',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'content_block_start',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    const start = seq[0]!.data.message as { usage: Record<string, unknown>; model: string };
    expect(start.model).toBe('claude-opus-5-5');
    expect(start.usage).toMatchObject({ input_tokens: 10, output_tokens: 1, cache_read_input_tokens: 30, cache_creation_input_tokens: 9 });
    expect(start.usage.cache_creation).toEqual({ ephemeral_5m_input_tokens: 4, ephemeral_1h_input_tokens: 5 });
    expect(seq[6]!.data.content_block).toMatchObject({ type: 'tool_use', name: 'Bash', input: {} });
    expect(seq[7]!.data.delta).toEqual({ type: 'input_json_delta', partial_json: '{"command":"ls"}' });
    expect(seq[9]!.data).toMatchObject({ delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 20, input_tokens: 10 } });
    expect(api.billed(['s-1'])).toEqual({
      'claude-opus-5-5': {
        input_tokens: 10,
        output_tokens: 20,
        cache_read_tokens: 30,
        cache_write_tokens: 9,
        cache_write_5m_tokens: 4,
        cache_write_1h_tokens: 5,
        web_search_requests: 0,
      },
    });
  });

  it('answers without stream as one JSON message with the same usage; web searches are billed per request', async () => {
    api.script('t2', [{ content: [{ type: 'web_search', query: 'a' }, { type: 'web_search', query: 'b' }, { type: 'text', text: 'ok' }] }]);
    const res = await post({ model: 'claude-haiku-5-5', messages: [{ role: 'user', content: [{ type: 'text', text: 'x [[t2]]' }] }] }, 's-2');
    const body = (await res.json()) as { type: string; content: Array<{ type: string }>; usage: { server_tool_use: { web_search_requests: number } } };
    expect(body.type).toBe('message');
    expect(body.content.map((b) => b.type)).toEqual(['server_tool_use', 'web_search_tool_result', 'server_tool_use', 'web_search_tool_result', 'text']);
    expect(body.usage.server_tool_use.web_search_requests).toBe(2);
    const n = api.requests.at(-1)!.n;
    expect(api.billed(['s-2'])['claude-haiku-5-5']).toMatchObject({ web_search_requests: 2, input_tokens: madeUpUsage(n).input_tokens });
  });

  it('picks the step from the assistant turns after the marked prompt, and spots compaction', () => {
    const body = {
      messages: [
        { role: 'user', content: '[[a]] first' },
        { role: 'assistant', content: [{ type: 'text', text: 'x' }] },
        { role: 'user', content: [{ type: 'tool_result' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'y' }] },
        { role: 'user', content: [{ type: 'tool_result' }] },
      ],
    };
    expect(locate(body)).toEqual({ marker: 'a', step: 2 });
    expect(locate({ messages: [{ role: 'user', content: 'no marker' }] })).toEqual({ marker: null, step: 0 });
    const compact = { messages: [...body.messages, { role: 'user', content: 'Your task is to create a detailed summary of the conversation so far' }] };
    expect(classify(compact)).toBe('compaction');
    expect(classify({ messages: [{ role: 'user', content: '<task-notification><summary>done</summary></task-notification>' }] })).toBe('other');
  });

  it('refuses other paths and records them as unexpected', async () => {
    const res = await fetch(url.replace('/v1/messages', '/v1/models'), { method: 'GET' });
    expect(res.status).toBe(404);
    expect(api.unexpected).toEqual(['GET /v1/models?beta=true']);
  });
});
