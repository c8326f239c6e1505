// Drives the official OpenAI and Anthropic Node SDKs against a running OpenTracy gateway and
// prints what they got as one JSON object. The Go test that starts the gateway (with a fake
// upstream) runs this script and checks the result: backend/server/npm_sdk_test.go.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

const base = process.env.OPENTRACY_BASE;
const key = process.env.OPENTRACY_KEY;
if (!base || !key) {
  console.error('set OPENTRACY_BASE (http://127.0.0.1:PORT) and OPENTRACY_KEY');
  process.exit(2);
}

const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: `${base}/anthropic`, apiKey: key, maxRetries: 0 });
const messages = [{ role: 'user', content: 'Hello' }];
const weatherTool = {
  type: 'function',
  function: { name: 'get_current_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } },
};

const out = {};

const plain = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages });
out.chat = { content: plain.choices[0].message.content, totalTokens: plain.usage.total_tokens };

let streamed = '';
let streamUsage = null;
const stream = await openai.chat.completions.create({
  model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  streamed += chunk.choices[0]?.delta?.content ?? '';
  if (chunk.usage) streamUsage = chunk.usage;
}
out.stream = { content: streamed, promptTokens: streamUsage?.prompt_tokens ?? null };

const tools = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, tools: [weatherTool] });
out.tools = tools.choices[0].message.tool_calls.map((c) => [c.function.name, JSON.parse(c.function.arguments).location]);

const args = {};
const toolStream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, tools: [weatherTool], stream: true });
for await (const chunk of toolStream) {
  for (const call of chunk.choices[0]?.delta?.tool_calls ?? []) {
    args[call.index] = (args[call.index] ?? '') + (call.function?.arguments ?? '');
  }
}
out.streamedTools = Object.values(args).map((a) => JSON.parse(a).location);

const structured = await openai.chat.completions.create({
  model: 'gpt-4o-mini', messages,
  response_format: {
    type: 'json_schema',
    json_schema: { name: 'answer', strict: true, schema: { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'], additionalProperties: false } },
  },
});
out.jsonSchema = { finish: structured.choices[0].finish_reason };

const emb = await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'The food was delicious', encoding_format: 'float' });
out.embeddings = { dims: emb.data[0].embedding.length };

const models = [];
for await (const m of openai.models.list()) models.push(m.id);
out.models = models;

try {
  await new OpenAI({ baseURL: `${base}/v1`, apiKey: 'ot-wrong', maxRetries: 0 }).chat.completions.create({ model: 'gpt-4o-mini', messages });
  out.wrongKey = 'accepted';
} catch (err) {
  out.wrongKey = { status: err.status, code: err.code };
}

const msg = await anthropic.messages.create({ model: 'gpt-4o-mini', max_tokens: 256, messages });
out.anthropic = { text: msg.content[0].text, stop: msg.stop_reason, inputTokens: msg.usage.input_tokens };

const anthropicStream = anthropic.messages.stream({ model: 'gpt-4o-mini', max_tokens: 256, messages });
const final = await anthropicStream.finalMessage();
out.anthropicStream = { text: final.content[0].text, outputTokens: final.usage.output_tokens };

console.log(JSON.stringify(out));
