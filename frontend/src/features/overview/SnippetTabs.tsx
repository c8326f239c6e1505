import { Box, Code, Tabs } from '@mantine/core';
import { CopyIconButton } from '../../components/CopyIconButton';
import type { SnippetLanguage } from './snippets';

const languages: { value: SnippetLanguage; label: string }[] = [
  { value: 'python', label: 'Python' },
  { value: 'node', label: 'Node' },
  { value: 'curl', label: 'curl' },
];

interface SnippetTabsProps {
  /** Displayed code; the key is masked unless the user revealed it. */
  shown: Record<SnippetLanguage, string>;
  /** Copied code; always carries the full key so it works when pasted. */
  copied: Record<SnippetLanguage, string>;
}

export function SnippetTabs({ shown, copied }: SnippetTabsProps) {
  return (
    <Tabs defaultValue="python" keepMounted={false}>
      <Tabs.List aria-label="Client snippets">
        {languages.map(({ value, label }) => (
          <Tabs.Tab key={value} value={value}>
            {label}
          </Tabs.Tab>
        ))}
      </Tabs.List>
      {languages.map(({ value, label }) => (
        <Tabs.Panel key={value} value={value} pt="sm">
          <Box pos="relative">
            <Code block>
              {shown[value]}
            </Code>
            <Box pos="absolute" top={6} right={6}>
              <CopyIconButton value={copied[value]} label={`Copy ${label} snippet`} />
            </Box>
          </Box>
        </Tabs.Panel>
      ))}
    </Tabs>
  );
}
