import { Badge, Code, Group, Paper, Stack, Text } from '@mantine/core';
import { IconPaperclip, IconTool } from '@tabler/icons-react';
import type { Message, Part, ToolCall } from './conversation';

const roleColors: Record<string, string> = {
  system: 'gray',
  developer: 'gray',
  user: 'blue',
  assistant: 'teal',
  tool: 'orange',
  function: 'orange',
};

interface ConversationProps {
  /** The list's accessible name, e.g. "Conversation". */
  label: string;
  messages: Message[];
  /** Tool names by call id, so tool results can name their tool. */
  callNames: Map<string, string>;
}

/** Messages in order, each labelled by its role. */
export function Conversation({ label, messages, callNames }: ConversationProps) {
  return (
    <Stack component="ol" gap="xs" p={0} m={0} aria-label={label} style={{ listStyle: 'none' }}>
      {messages.map((message, i) => (
        <MessageView key={i} message={message} callNames={callNames} />
      ))}
    </Stack>
  );
}

function MessageView({ message, callNames }: { message: Message; callNames: Map<string, string> }) {
  const { role, name, parts, toolCalls } = message;
  return (
    <Paper component="li" withBorder p="sm" aria-label={`${role} message`}>
      <Stack gap={6}>
        <Group gap={6}>
          <Badge variant="light" color={roleColors[role] ?? 'gray'} tt="none">
            {role}
          </Badge>
          {name && role !== 'tool' ? (
            <Text size="xs" c="dimmed">
              {name}
            </Text>
          ) : null}
        </Group>
        {parts.map((part, i) => (
          <PartView key={i} part={part} callNames={callNames} />
        ))}
        {toolCalls.map((call, i) => (
          <ToolCallView key={call.id ?? i} call={call} />
        ))}
        {parts.length === 0 && toolCalls.length === 0 ? (
          <Text size="sm" c="dimmed">
            (empty)
          </Text>
        ) : null}
      </Stack>
    </Paper>
  );
}

function PartView({ part, callNames }: { part: Part; callNames: Map<string, string> }) {
  switch (part.kind) {
    case 'text':
      return (
        <Text size="sm" style={{ whiteSpace: 'pre-wrap', overflowWrap: 'anywhere' }}>
          {part.text}
        </Text>
      );
    case 'media':
      return (
        <Group gap={6} wrap="nowrap" role="group" aria-label="Attachment">
          <IconPaperclip size={16} aria-hidden />
          <Text size="sm" c="dimmed" style={{ overflowWrap: 'anywhere' }}>
            {part.label}
          </Text>
        </Group>
      );
    case 'toolResult': {
      const tool = part.name ?? (part.callId ? callNames.get(part.callId) : undefined);
      const title = ['Tool result', tool, part.callId ? `(${part.callId})` : undefined].filter(Boolean).join(' ');
      return (
        <Stack gap={4} role="group" aria-label={title}>
          <Text size="xs" c="dimmed" fw={600}>
            {title}
          </Text>
          {part.parts.map((inner, i) =>
            inner.kind === 'text' ? (
              <Code key={i} block style={{ whiteSpace: 'pre-wrap' }}>
                {prettyIfJSON(inner.text)}
              </Code>
            ) : (
              <PartView key={i} part={inner} callNames={callNames} />
            ),
          )}
        </Stack>
      );
    }
    case 'json':
      return (
        <Code block style={{ whiteSpace: 'pre-wrap' }}>
          {JSON.stringify(part.value, null, 2)}
        </Code>
      );
  }
}

function prettyIfJSON(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function ToolCallView({ call }: { call: ToolCall }) {
  return (
    <Stack gap={4} role="group" aria-label={`Tool call ${call.name}`}>
      <Group gap={6}>
        <IconTool size={16} aria-hidden />
        <Text size="sm" fw={600} ff="monospace">
          {call.name}
        </Text>
        {call.id ? (
          <Text size="xs" c="dimmed">
            {call.id}
          </Text>
        ) : null}
      </Group>
      {call.arguments ? (
        <Code block style={{ whiteSpace: 'pre-wrap' }}>
          {call.arguments}
        </Code>
      ) : null}
    </Stack>
  );
}
