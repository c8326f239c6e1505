import { AppShell, Center, Loader } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { Outlet } from 'react-router-dom';
import { isUnauthorized } from '../api/client';
import { TokenRequiredPage } from '../features/auth';
import { useInfo } from '../features/instance';
import { AppHeader } from './AppHeader';
import { MainNav } from './MainNav';

export function AppFrame() {
  const info = useInfo();
  const [navOpened, { toggle: toggleNav, close: closeNav }] = useDisclosure(false);

  // Until /api/info first answers we do not know whether this browser holds the UI token; waiting
  // avoids flashing the frame (and opening the event stream) only to replace it with the token page.
  // Later refetches keep the frame: they reset an errored query to pending, which must not unmount the screens.
  if (!info.isFetched) {
    return (
      <Center mih="100vh">
        <Loader aria-label="Loading OpenTracy" />
      </Center>
    );
  }
  if (isUnauthorized(info.error)) return <TokenRequiredPage />;

  return (
    <AppShell
      header={{ height: 56 }}
      navbar={{ width: 240, breakpoint: 'sm', collapsed: { mobile: !navOpened } }}
      padding="lg"
    >
      <AppShell.Header>
        <AppHeader version={info.data?.version} navOpened={navOpened} onToggleNav={toggleNav} />
      </AppShell.Header>
      <AppShell.Navbar p="sm" aria-label="Main navigation">
        <MainNav onNavigate={closeNav} />
      </AppShell.Navbar>
      <AppShell.Main>
        <Outlet />
      </AppShell.Main>
    </AppShell>
  );
}
