import { screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { renderWithProviders } from '../test/renderApp';
import { ThemeToggle } from './ThemeToggle';

const scheme = () => document.documentElement.getAttribute('data-mantine-color-scheme');

describe('ThemeToggle', () => {
  it('flips the color scheme and remembers the choice', async () => {
    const { user } = renderWithProviders(<ThemeToggle />);
    // The test OS (matchMedia) prefers light.
    expect(scheme()).toBe('light');

    await user.click(screen.getByRole('button', { name: 'Toggle color scheme' }));
    expect(scheme()).toBe('dark');
    expect(localStorage.getItem('mantine-color-scheme-value')).toBe('dark');

    await user.click(screen.getByRole('button', { name: 'Toggle color scheme' }));
    expect(scheme()).toBe('light');
  });
});
