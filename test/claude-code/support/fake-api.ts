/**
 * A fake Anthropic Messages API for the real Claude Code client, with every billed number known.
 *
 * It speaks what Claude Code 2.1.328 uses: `POST /v1/messages` streamed as server-sent events
 * exactly as the real API sends them (`message_start` carrying the input-side usage,
 * `content_block_start`/`_delta`/`_stop` per block, `message_delta` with the final usage,
 * `message_stop`), or as one JSON message when the request has no `stream: true`; every answer has
 * a `request-id: req_…` header.
 *
 * Scripting: a test puts a marker such as `[[turn-1]]` in a prompt (or in an Agent tool call's
 * prompt) and registers the responses for it with `script(marker, steps)`. A request belongs to
 * the last user message that carries a marker; the number of assistant messages after that one
 * picks the step, so concurrent conversations (background subagents, a classifier) each get the
 * right answer whatever order they arrive in. Requests with no marker (compaction, the auto-mode
 * classifier, anything else Claude Code does on its own) get `background` answers.
 *
 * Billing: every answer's usage is recorded per session (`x-claude-code-session-id`) and model, so
 * a test compares what the receiver stored with exactly what this API billed.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';

/** One content block of a scripted answer. */
export type Block =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; name: string; input: Record<string, unknown> }
  /** A server-side web search: `server_tool_use` + `web_search_tool_result`, billed per request. */
  | { type: 'web_search'; query: string };

/** Usage of one answer. Omitted counters are made up from the request number (all distinct). */
export interface StepUsage {
  input_tokens?: number;
  output_tokens?: number;
  cache_read_input_tokens?: number;
  cache_write_5m_tokens?: number;
  cache_write_1h_tokens?: number;
}

export interface Step {
  content: Block[];
  usage?: StepUsage;
  /** Defaults to `tool_use` when the content has a client tool call, else `end_turn`. */
  stop_reason?: string;
}

/** What the fake API billed, per model: the counters the receiver stores. */
export interface Billed {
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  cache_write_5m_tokens: number;
  cache_write_1h_tokens: number;
  web_search_requests: number;
}
export type BilledByModel = Record<string, Billed>;

export type RequestKind = 'scripted' | 'compaction' | 'classifier' | 'other';

export interface RequestRecord {
  n: number;
  sessionId: string;
  model: string;
  stream: boolean;
  kind: RequestKind;
  marker: string | null;
  step: number;
  requestId: string;
  messageId: string;
  billed: Billed;
  /** The request body, kept only with `keepBodies` (for debugging a scenario). */
  body?: MessagesBody;
}

/** How to answer a request that carries no marker. Returns null to use the default for its kind. */
export type BackgroundResponder = (request: { kind: RequestKind; body: MessagesBody; n: number }) => Step | null;

interface ContentPart {
  type?: string;
  text?: string;
}
interface Message {
  role?: string;
  content?: string | ContentPart[];
}
export interface MessagesBody {
  model?: string;
  stream?: boolean;
  messages?: Message[];
  system?: string | ContentPart[];
  tools?: Array<{ name?: string; type?: string }>;
}

const MARKER = /\[\[([a-z0-9_.:-]+)\]\]/gi;

export function zeroBilled(): Billed {
  return {
    input_tokens: 0,
    output_tokens: 0,
    cache_read_tokens: 0,
    cache_write_tokens: 0,
    cache_write_5m_tokens: 0,
    cache_write_1h_tokens: 0,
    web_search_requests: 0,
  };
}

export function addBilled(into: BilledByModel, model: string, b: Billed): void {
  const t = into[model] ?? zeroBilled();
  into[model] = t;
  for (const key of Object.keys(t) as Array<keyof Billed>) t[key] += b[key];
}

function textOf(content: Message['content']): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .filter((p) => p.type === 'text' && typeof p.text === 'string')
    .map((p) => p.text)
    .join('\n');
}

/** The marker this request answers to and how many answers that conversation already has. */
export function locate(body: MessagesBody): { marker: string | null; step: number } {
  const messages = body.messages ?? [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!;
    if (m.role !== 'user') continue;
    const found = [...textOf(m.content).matchAll(MARKER)];
    if (found.length === 0) continue;
    const step = messages.slice(i + 1).filter((x) => x.role === 'assistant').length;
    return { marker: found.at(-1)![1]!.toLowerCase(), step };
  }
  return { marker: null, step: 0 };
}

/** Compaction and the auto-mode classifier, told apart by what they ask for. */
export function classify(body: MessagesBody): RequestKind {
  const system = typeof body.system === 'string' ? body.system : textOf(body.system);
  const lastUser = [...(body.messages ?? [])].reverse().find((m) => m.role === 'user');
  const asked = `${system}\n${textOf(lastUser?.content)}`;
  // Not `<summary>` alone: background-task notifications carry one too.
  if (/create a detailed summary of the conversation/i.test(asked)) return 'compaction';
  if (/classif|security monitor|safety monitor|transcript.*(allow|block)/i.test(system)) return 'classifier';
  return 'other';
}

/**
 * Counters for request `n` when a step leaves them out: distinct, so double counting shows; every
 * third request also writes to the 1-hour cache, so the split is always exercised.
 */
export function madeUpUsage(n: number): Required<StepUsage> {
  return {
    input_tokens: 1_000 + 17 * n,
    output_tokens: 40 + 7 * n,
    cache_read_input_tokens: 20_000 + 311 * n,
    cache_write_5m_tokens: 500 + 13 * n,
    cache_write_1h_tokens: n % 3 === 0 ? 2_000 + 29 * n : 0,
  };
}

export class FakeAnthropicApi {
  readonly requests: RequestRecord[] = [];
  /** Requests this API could not answer (wrong path, bad JSON): a test should see none. */
  readonly unexpected: string[] = [];
  keepBodies = false;
  private readonly scripts = new Map<string, Step[]>();
  private background: BackgroundResponder = () => null;
  private readonly server: Server;
  private n = 0;

  constructor() {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  /** Serves on a listening socket handed over from the sandbox (it belongs to its namespace). */
  attach(listening: unknown): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(listening as Parameters<Server['listen']>[0], () => resolve());
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  script(marker: string, steps: Step[]): void {
    this.scripts.set(marker.toLowerCase(), steps);
  }

  onBackground(responder: BackgroundResponder): void {
    this.background = responder;
  }

  /** Billed totals per model, over the given sessions (all when omitted). */
  billed(sessionIds?: Iterable<string>): BilledByModel {
    const only = sessionIds === undefined ? null : new Set(sessionIds);
    const out: BilledByModel = {};
    for (const r of this.requests) if (only === null || only.has(r.sessionId)) addBilled(out, r.model, r.billed);
    return out;
  }

  /** Session ids seen in requests numbered above `sinceRequest`. */
  sessions(sinceRequest = 0): string[] {
    return [...new Set(this.requests.filter((r) => r.n > sinceRequest).map((r) => r.sessionId))];
  }

  get count(): number {
    return this.n;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'POST' || path !== '/v1/messages') {
        this.unexpected.push(`${req.method} ${req.url}`);
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ type: 'error', error: { type: 'not_found_error', message: 'fake API: not found' } }));
        return;
      }
      let body: MessagesBody;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as MessagesBody;
      } catch {
        this.unexpected.push(`${req.method} ${req.url}: body is not JSON`);
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: 'bad JSON' } }));
        return;
      }
      this.answer(req, res, body);
    });
  }

  private pickStep(body: MessagesBody, n: number): { step: Step; kind: RequestKind; marker: string | null; index: number } {
    // Compaction and the classifier carry the conversation, markers included: recognise them first.
    const kind = classify(body);
    const { marker, step: index } = locate(body);
    const steps = marker === null || kind !== 'other' ? undefined : this.scripts.get(marker);
    if (marker !== null && steps !== undefined) {
      return { step: steps[index] ?? { content: [{ type: 'text', text: `Done (${marker}).` }] }, kind: 'scripted', marker, index };
    }
    const chosen = this.background({ kind, body, n }) ?? defaultBackground(kind);
    return { step: chosen, kind, marker, index };
  }

  private answer(req: IncomingMessage, res: ServerResponse, body: MessagesBody): void {
    const n = ++this.n;
    const model = body.model ?? 'unknown-model';
    const { step, kind, marker, index } = this.pickStep(body, n);
    const usage = { ...madeUpUsage(n), ...step.usage };
    const webSearches = step.content.filter((b) => b.type === 'web_search').length;
    const billed: Billed = {
      input_tokens: usage.input_tokens,
      output_tokens: usage.output_tokens,
      cache_read_tokens: usage.cache_read_input_tokens,
      cache_write_tokens: usage.cache_write_5m_tokens + usage.cache_write_1h_tokens,
      cache_write_5m_tokens: usage.cache_write_5m_tokens,
      cache_write_1h_tokens: usage.cache_write_1h_tokens,
      web_search_requests: webSearches,
    };
    const sessionHeader = req.headers['x-claude-code-session-id'];
    const record: RequestRecord = {
      n,
      sessionId: typeof sessionHeader === 'string' ? sessionHeader : '',
      model,
      stream: body.stream === true,
      kind,
      marker,
      step: index,
      requestId: `req_fake${String(n).padStart(6, '0')}`,
      messageId: `msg_fake${String(n).padStart(6, '0')}`,
      billed,
      ...(this.keepBodies ? { body } : {}),
    };
    this.requests.push(record);
    const blocks = step.content.flatMap((b, i) => renderBlock(b, n, i));
    const stopReason = step.stop_reason ?? (step.content.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn');
    const apiUsage = {
      input_tokens: usage.input_tokens,
      cache_creation_input_tokens: billed.cache_write_tokens,
      cache_read_input_tokens: usage.cache_read_input_tokens,
      cache_creation: {
        ephemeral_5m_input_tokens: usage.cache_write_5m_tokens,
        ephemeral_1h_input_tokens: usage.cache_write_1h_tokens,
      },
      output_tokens: usage.output_tokens,
      server_tool_use: { web_search_requests: webSearches, web_fetch_requests: 0 },
      service_tier: 'standard',
    };
    const headers = { 'request-id': record.requestId, 'anthropic-organization-id': 'org-fake' };
    if (!record.stream) {
      res.writeHead(200, { ...headers, 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: record.messageId,
          type: 'message',
          role: 'assistant',
          model,
          content: blocks.map((b) => b.full),
          stop_reason: stopReason,
          stop_sequence: null,
          usage: apiUsage,
        }),
      );
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    const event = (name: string, data: unknown) => res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
    // The real API sends the input side at message_start, output_tokens still at its first value.
    event('message_start', {
      type: 'message_start',
      message: {
        id: record.messageId,
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...apiUsage, output_tokens: 1, server_tool_use: undefined },
      },
    });
    event('ping', { type: 'ping' });
    blocks.forEach((b, index) => {
      event('content_block_start', { type: 'content_block_start', index, content_block: b.start });
      for (const delta of b.deltas) event('content_block_delta', { type: 'content_block_delta', index, delta });
      event('content_block_stop', { type: 'content_block_stop', index });
    });
    event('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: stopReason, stop_sequence: null },
      usage: {
        input_tokens: apiUsage.input_tokens,
        cache_creation_input_tokens: apiUsage.cache_creation_input_tokens,
        cache_read_input_tokens: apiUsage.cache_read_input_tokens,
        output_tokens: apiUsage.output_tokens,
        server_tool_use: apiUsage.server_tool_use,
      },
    });
    event('message_stop', { type: 'message_stop' });
    res.end();
  }
}

interface Rendered {
  full: Record<string, unknown>;
  start: Record<string, unknown>;
  deltas: Record<string, unknown>[];
}

/** One scripted block as the API's content blocks: its full form and its streamed form. */
function renderBlock(b: Block, n: number, i: number): Rendered[] {
  const id = `${String(n).padStart(6, '0')}${i}`;
  if (b.type === 'text') {
    const half = Math.ceil(b.text.length / 2);
    return [
      {
        full: { type: 'text', text: b.text },
        start: { type: 'text', text: '' },
        deltas: [b.text.slice(0, half), b.text.slice(half)].filter((t) => t).map((text) => ({ type: 'text_delta', text })),
      },
    ];
  }
  if (b.type === 'tool_use') {
    const json = JSON.stringify(b.input);
    return [
      {
        full: { type: 'tool_use', id: `toolu_fake${id}`, name: b.name, input: b.input },
        start: { type: 'tool_use', id: `toolu_fake${id}`, name: b.name, input: {} },
        deltas: [{ type: 'input_json_delta', partial_json: json }],
      },
    ];
  }
  const toolId = `srvtoolu_fake${id}`;
  const results = [
    {
      type: 'web_search_result',
      title: `Result for ${b.query}`,
      url: 'https://example.org/result',
      encrypted_content: 'ZmFrZQ==',
      page_age: null,
    },
  ];
  return [
    {
      full: { type: 'server_tool_use', id: toolId, name: 'web_search', input: { query: b.query } },
      start: { type: 'server_tool_use', id: toolId, name: 'web_search', input: {} },
      deltas: [{ type: 'input_json_delta', partial_json: JSON.stringify({ query: b.query }) }],
    },
    {
      full: { type: 'web_search_tool_result', tool_use_id: toolId, content: results },
      start: { type: 'web_search_tool_result', tool_use_id: toolId, content: results },
      deltas: [],
    },
  ];
}

function defaultBackground(kind: RequestKind): Step {
  if (kind === 'compaction') {
    return { content: [{ type: 'text', text: '<summary>The user and the assistant ran a few scripted test turns.</summary>' }] };
  }
  if (kind === 'classifier') return { content: [{ type: 'text', text: '<block>no</block>' }] };
  return { content: [{ type: 'text', text: 'ok' }] };
}
