import { Center, Code, List, Paper, Stack, Text, ThemeIcon, Title } from '@mantine/core';
import { IconLock } from '@tabler/icons-react';

/** Shown instead of the app when /api answers 401: this browser has no UI token cookie. */
export function TokenRequiredPage() {
  return (
    <Center component="main" mih="100vh" p="md">
      <Paper withBorder shadow="sm" p="xl" maw={560}>
        <Stack gap="md">
          <ThemeIcon size={48} radius="xl" variant="light" color="orange">
            <IconLock size={26} aria-hidden />
          </ThemeIcon>
          <Title order={1} size="h2">
            Open the link printed by opentracy serve
          </Title>
          <Text>
            This page needs the access token that OpenTracy hands out with its link, so other websites and local
            programs cannot read your traces.
          </Text>
          <List spacing="xs">
            <List.Item>
              In the terminal running <Code>opentracy serve</Code>, open the <Code>UI:</Code> link. It looks like{' '}
              <Code>http://127.0.0.1:PORT/?token=…</Code>
            </List.Item>
            <List.Item>Or use the OpenTracy desktop app, which signs in by itself.</List.Item>
          </List>
        </Stack>
      </Paper>
    </Center>
  );
}
