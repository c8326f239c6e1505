import { describe, expect, it } from 'vitest';
import { sampleTraceDetail } from '../../test/fakeApi';
import { callNames, readInput, readOutput, toolNames } from './conversation';

describe('readInput', () => {
  it('reads OpenAI chat messages with parts, images, tool calls and tool results', () => {
    const messages = readInput(sampleTraceDetail.input);
    expect(messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool']);
    expect(messages[1]?.parts).toEqual([
      { kind: 'text', text: 'What is the weather in Paris?' },
      { kind: 'media', label: 'Image: image/png, 9 B' },
    ]);
    expect(messages[2]?.toolCalls).toEqual([
      { id: 'call_1', name: 'get_weather', arguments: '{\n  "city": "Paris",\n  "unit": "celsius"\n}' },
    ]);
    expect(messages[3]?.parts).toEqual([
      { kind: 'toolResult', callId: 'call_1', name: undefined, parts: [{ kind: 'text', text: '{"temp": 21}' }] },
    ]);
    expect(callNames(messages).get('call_1')).toBe('get_weather');
  });

  it('reads Anthropic content blocks', () => {
    const messages = readInput({
      system: 'Be brief.',
      messages: [
        { role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: 'AA' } }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'tu_1', name: 'lookup', input: { q: 'x' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'tu_1', content: 'found' }] },
      ],
    });
    expect(messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(messages[1]?.parts).toEqual([{ kind: 'media', label: 'Image: image/jpeg' }]);
    expect(messages[2]?.toolCalls).toEqual([{ id: 'tu_1', name: 'lookup', arguments: '{\n  "q": "x"\n}' }]);
    expect(messages[3]?.parts).toEqual([
      { kind: 'toolResult', callId: 'tu_1', parts: [{ kind: 'text', text: 'found' }] },
    ]);
  });

  it('reads a completion prompt and embedding inputs', () => {
    expect(readInput('Once upon a time')).toEqual([
      { role: 'prompt', parts: [{ kind: 'text', text: 'Once upon a time' }], toolCalls: [] },
    ]);
    expect(readInput(['a', 'b']).map((m) => m.parts)).toEqual([
      [{ kind: 'text', text: 'a' }],
      [{ kind: 'text', text: 'b' }],
    ]);
    expect(readInput(undefined)).toEqual([]);
  });
});

describe('readOutput', () => {
  it('reads chat choices, with tool calls', () => {
    const messages = readOutput([
      {
        index: 0,
        message: {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: 'not json' } }],
        },
      },
    ]);
    expect(messages).toEqual([{ role: 'assistant', name: undefined, parts: [], toolCalls: [{ id: 'c', name: 'f', arguments: 'not json' }] }]);
  });

  it('reads completion choices and Anthropic content', () => {
    expect(readOutput([{ index: 0, text: 'done' }])[0]?.parts).toEqual([{ kind: 'text', text: 'done' }]);
    expect(readOutput([{ type: 'text', text: 'hi' }])[0]?.parts).toEqual([{ kind: 'text', text: 'hi' }]);
  });
});

describe('toolNames', () => {
  it('names OpenAI and Anthropic tools', () => {
    expect(toolNames(sampleTraceDetail.tools)).toEqual(['get_weather']);
    expect(toolNames([{ name: 'lookup', input_schema: {} }])).toEqual(['lookup']);
    expect(toolNames(undefined)).toEqual([]);
  });
});
