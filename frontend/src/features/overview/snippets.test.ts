import { describe, expect, it } from 'vitest';
import { buildSnippets, maskKey } from './snippets';

const baseURL = 'http://127.0.0.1:8787/v1';
const key = 'ot-abcdef123456';

describe('maskKey', () => {
  it('keeps the first 6 characters and hides the rest', () => {
    expect(maskKey(key)).toBe('ot-abc••••••••');
    expect(maskKey(key)).not.toContain('123456');
  });
});

describe('buildSnippets', () => {
  const snippets = buildSnippets(baseURL, key);

  it('points the Python client at the gateway with the full key', () => {
    expect(snippets.python).toContain('from openai import OpenAI');
    expect(snippets.python).toContain(`base_url="${baseURL}"`);
    expect(snippets.python).toContain(`api_key="${key}"`);
    expect(snippets.python).toContain('model="gpt-4o-mini"');
  });

  it('points the Node client at the gateway with the full key', () => {
    expect(snippets.node).toContain('import OpenAI from "openai"');
    expect(snippets.node).toContain(`baseURL: "${baseURL}"`);
    expect(snippets.node).toContain(`apiKey: "${key}"`);
  });

  it('builds a curl call to the chat completions endpoint', () => {
    expect(snippets.curl).toContain(`curl ${baseURL}/chat/completions`);
    expect(snippets.curl).toContain(`Authorization: Bearer ${key}`);
  });
});
