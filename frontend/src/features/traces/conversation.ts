/**
 * Turns a trace's recorded input and output (exactly what the client sent and the upstream
 * answered: OpenAI chat messages and choices, Anthropic content blocks, completion prompts,
 * embedding inputs) into messages the drawer can render.
 */

export type Part =
  | { kind: 'text'; text: string }
  /** Images, audio and files are shown as placeholders, never loaded. */
  | { kind: 'media'; label: string }
  | { kind: 'toolResult'; callId?: string; name?: string; parts: Part[] }
  /** Anything unrecognised, shown as JSON. */
  | { kind: 'json'; value: unknown };

export interface ToolCall {
  id?: string;
  name: string;
  /** Pretty-printed JSON when the arguments parse, else as recorded. */
  arguments: string;
}

export interface Message {
  role: string;
  name?: string;
  parts: Part[];
  toolCalls: ToolCall[];
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

export function prettyJSON(value: unknown): string {
  if (typeof value === 'string') {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2) ?? String(value);
}

/** "data:image/png;base64,…" → "image/png, 12 KB"; a URL stays itself. */
function describeSource(url: string): string {
  const data = /^data:([^;,]+)[^,]*,(.*)$/s.exec(url);
  if (!data) return url;
  const bytes = Math.round(((data[2]?.length ?? 0) * 3) / 4);
  const size = bytes >= 1024 ? `${Math.round(bytes / 1024)} KB` : `${bytes} B`;
  return `${data[1]}, ${size}`;
}

function mediaLabel(part: Json): string | undefined {
  switch (part.type) {
    case 'image_url': {
      const image = part.image_url;
      const url = isObject(image) ? str(image.url) : str(image);
      return url ? `Image: ${describeSource(url)}` : 'Image';
    }
    case 'input_image': {
      const url = str(part.image_url);
      return url ? `Image: ${describeSource(url)}` : 'Image';
    }
    case 'image':
    case 'document': {
      const source = isObject(part.source) ? part.source : {};
      const what = part.type === 'image' ? 'Image' : 'Document';
      const detail = str(source.url) ?? str(source.media_type);
      return detail ? `${what}: ${detail}` : what;
    }
    case 'input_audio': {
      const audio = isObject(part.input_audio) ? part.input_audio : {};
      const format = str(audio.format);
      return format ? `Audio: ${format}` : 'Audio';
    }
    case 'file': {
      const file = isObject(part.file) ? part.file : {};
      const name = str(file.filename) ?? str(file.file_id);
      return name ? `File: ${name}` : 'File';
    }
    default:
      return undefined;
  }
}

function toolCallOf(id: string | undefined, name: string, args: unknown): ToolCall {
  return { id, name, arguments: args === undefined ? '' : prettyJSON(args) };
}

/** Content as a string, an array of parts or blocks, or null. Tool-use blocks become calls. */
function readContent(content: unknown, calls: ToolCall[]): Part[] {
  if (content === null || content === undefined || content === '') return [];
  if (typeof content === 'string') return [{ kind: 'text', text: content }];
  if (!Array.isArray(content)) return [{ kind: 'json', value: content }];
  const parts: Part[] = [];
  for (const item of content) {
    if (typeof item === 'string') {
      parts.push({ kind: 'text', text: item });
      continue;
    }
    if (!isObject(item)) {
      parts.push({ kind: 'json', value: item });
      continue;
    }
    const text = str(item.text) ?? str(item.thinking) ?? str(item.refusal);
    const media = mediaLabel(item);
    if (media) {
      parts.push({ kind: 'media', label: media });
    } else if (item.type === 'tool_use' || item.type === 'server_tool_use') {
      calls.push(toolCallOf(str(item.id), str(item.name) ?? 'tool', item.input));
    } else if (item.type === 'tool_result') {
      parts.push({ kind: 'toolResult', callId: str(item.tool_use_id), parts: readContent(item.content, []) });
    } else if (text !== undefined) {
      parts.push({ kind: 'text', text });
    } else {
      parts.push({ kind: 'json', value: item });
    }
  }
  return parts;
}

function readToolCalls(value: unknown): ToolCall[] {
  if (!Array.isArray(value)) return [];
  return value.filter(isObject).map((call) => {
    const fn = isObject(call.function) ? call.function : call;
    return toolCallOf(str(call.id), str(fn.name) ?? 'tool', fn.arguments ?? fn.input);
  });
}

function readMessage(raw: Json): Message {
  const toolCalls = readToolCalls(raw.tool_calls);
  if (isObject(raw.function_call)) toolCalls.push(...readToolCalls([raw.function_call]));
  let parts = readContent(raw.content, toolCalls);
  const reasoning = str(raw.reasoning_content) ?? str(raw.reasoning);
  if (reasoning) parts = [{ kind: 'text', text: reasoning }, ...parts];
  const refusal = str(raw.refusal);
  if (refusal) parts.push({ kind: 'text', text: refusal });
  const role = str(raw.role) ?? 'message';
  const callId = str(raw.tool_call_id);
  // A tool message answers one call: shown as that call's result.
  if ((role === 'tool' || role === 'function') && (callId || parts.length > 0)) {
    return { role, parts: [{ kind: 'toolResult', callId, name: str(raw.name), parts }], toolCalls };
  }
  return { role, name: str(raw.name), parts, toolCalls };
}

/** The request's messages (or prompt, or embedding input) as messages. */
export function readInput(input: unknown): Message[] {
  if (input === undefined || input === null) return [];
  if (typeof input === 'string') return [{ role: 'prompt', parts: [{ kind: 'text', text: input }], toolCalls: [] }];
  if (isObject(input)) {
    // An Anthropic-shaped request: system beside the messages.
    if (Array.isArray(input.messages)) {
      const system = readContent(input.system, []);
      const head: Message[] = system.length > 0 ? [{ role: 'system', parts: system, toolCalls: [] }] : [];
      return [...head, ...readInput(input.messages)];
    }
    return [{ role: 'input', parts: [{ kind: 'json', value: input }], toolCalls: [] }];
  }
  if (!Array.isArray(input)) return [{ role: 'input', parts: [{ kind: 'json', value: input }], toolCalls: [] }];
  return input.map((item): Message => {
    if (isObject(item) && ('role' in item || 'content' in item)) return readMessage(item);
    if (typeof item === 'string') return { role: 'input', parts: [{ kind: 'text', text: item }], toolCalls: [] };
    return { role: 'input', parts: [{ kind: 'json', value: item }], toolCalls: [] };
  });
}

/** The response's choices (or content blocks, or text) as assistant messages. */
export function readOutput(output: unknown): Message[] {
  if (output === undefined || output === null) return [];
  if (typeof output === 'string') return [{ role: 'assistant', parts: [{ kind: 'text', text: output }], toolCalls: [] }];
  if (isObject(output)) {
    if (Array.isArray(output.choices)) return readOutput(output.choices);
    if (Array.isArray(output.content)) return [readMessage({ role: str(output.role) ?? 'assistant', ...output })];
    return [{ role: 'assistant', parts: [{ kind: 'json', value: output }], toolCalls: [] }];
  }
  if (!Array.isArray(output)) return [{ role: 'assistant', parts: [{ kind: 'json', value: output }], toolCalls: [] }];
  // Anthropic content blocks: one assistant message.
  if (output.every((item) => isObject(item) && typeof item.type === 'string' && !('message' in item))) {
    return [readMessage({ role: 'assistant', content: output })];
  }
  return output.map((choice): Message => {
    if (!isObject(choice)) return { role: 'assistant', parts: [{ kind: 'json', value: choice }], toolCalls: [] };
    if (isObject(choice.message)) return readMessage({ role: 'assistant', ...choice.message });
    if (isObject(choice.delta)) return readMessage({ role: 'assistant', ...choice.delta });
    const text = str(choice.text);
    if (text !== undefined) return { role: 'assistant', parts: [{ kind: 'text', text }], toolCalls: [] };
    return { role: 'assistant', parts: [{ kind: 'json', value: choice }], toolCalls: [] };
  });
}

/** The tool calls recorded beside the output, for outputs that do not carry them. */
export function readRecordedToolCalls(toolCalls: unknown): ToolCall[] {
  return readToolCalls(toolCalls);
}

/** The names of the request's tools (OpenAI function tools or Anthropic tools). */
export function toolNames(tools: unknown): string[] {
  if (!Array.isArray(tools)) return [];
  return tools.filter(isObject).map((tool) => {
    const fn = isObject(tool.function) ? tool.function : tool;
    return str(fn.name) ?? str(tool.type) ?? 'tool';
  });
}

/** Maps call ids to tool names, so a tool result can say which tool answered. */
export function callNames(messages: Message[]): Map<string, string> {
  const names = new Map<string, string>();
  messages.forEach((m) => m.toolCalls.forEach((call) => call.id && names.set(call.id, call.name)));
  return names;
}
