import { Burger, Group, Text } from '@mantine/core';
import { ThemeToggle } from '../components/ThemeToggle';
import { ConnectionIndicator } from '../features/events';

interface AppHeaderProps {
  version: string | undefined;
  navOpened: boolean;
  onToggleNav: () => void;
}

export function AppHeader({ version, navOpened, onToggleNav }: AppHeaderProps) {
  return (
    <Group h="100%" px="md" justify="space-between" wrap="nowrap">
      <Group gap="sm" wrap="nowrap">
        <Burger opened={navOpened} onClick={onToggleNav} hiddenFrom="sm" size="sm" aria-label="Toggle navigation" />
        <Text fw={800} size="lg" c="teal">
          OpenTracy
        </Text>
        {version && (
          <Text size="sm" c="dimmed" aria-label="Version">
            {version}
          </Text>
        )}
      </Group>
      <Group gap="sm" wrap="nowrap">
        <ConnectionIndicator />
        <ThemeToggle />
      </Group>
    </Group>
  );
}
