import { NavLink } from '@mantine/core';
import { NavLink as RouterNavLink, useMatch } from 'react-router-dom';
import { screens, type Screen } from './screens';

interface MainNavProps {
  /** Called after a link is clicked, so the mobile drawer can close. */
  onNavigate: () => void;
}

export function MainNav({ onNavigate }: MainNavProps) {
  return screens.map((screen) => <MainNavItem key={screen.path} screen={screen} onNavigate={onNavigate} />);
}

function MainNavItem({ screen, onNavigate }: { screen: Screen; onNavigate: () => void }) {
  const end = screen.path === '/';
  const active = useMatch({ path: screen.path, end }) !== null;
  const { icon: ScreenIcon } = screen;
  // The router's NavLink sets aria-current="page"; Mantine's `active` only styles it.
  return (
    <NavLink
      component={RouterNavLink}
      to={screen.path}
      end={end}
      label={screen.label}
      leftSection={<ScreenIcon size={18} stroke={1.6} aria-hidden />}
      active={active}
      onClick={onNavigate}
    />
  );
}
