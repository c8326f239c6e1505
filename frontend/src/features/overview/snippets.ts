const VISIBLE_KEY_CHARS = 6;

/** Keeps the key's prefix recognisable while hiding the secret part. */
export function maskKey(key: string): string {
  return `${key.slice(0, VISIBLE_KEY_CHARS)}••••••••`;
}

export type SnippetLanguage = 'python' | 'node' | 'curl';

const SNIPPET_MODEL = 'gpt-4o-mini';

/** Ready-to-paste client code that sends one chat request through the gateway. */
export function buildSnippets(baseURL: string, key: string): Record<SnippetLanguage, string> {
  return {
    python: `from openai import OpenAI

client = OpenAI(
    base_url="${baseURL}",
    api_key="${key}",
)

response = client.chat.completions.create(
    model="${SNIPPET_MODEL}",
    messages=[{"role": "user", "content": "Hello!"}],
)
print(response.choices[0].message.content)
`,
    node: `import OpenAI from "openai";

const client = new OpenAI({
  baseURL: "${baseURL}",
  apiKey: "${key}",
});

const response = await client.chat.completions.create({
  model: "${SNIPPET_MODEL}",
  messages: [{ role: "user", content: "Hello!" }],
});
console.log(response.choices[0].message.content);
`,
    curl: `curl ${baseURL}/chat/completions \\
  -H "Authorization: Bearer ${key}" \\
  -H "Content-Type: application/json" \\
  -d '{"model": "${SNIPPET_MODEL}", "messages": [{"role": "user", "content": "Hello!"}]}'
`,
  };
}
