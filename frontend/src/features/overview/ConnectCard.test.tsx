import { screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { sampleInfo } from '../../test/fakeApi';
import { renderWithProviders } from '../../test/renderApp';
import { ConnectCard } from './ConnectCard';

const { gateway } = sampleInfo;

describe('ConnectCard', () => {
  it('shows the base URL and the key masked', () => {
    renderWithProviders(<ConnectCard gateway={gateway} />);
    expect(screen.getByLabelText('Gateway base URL')).toHaveValue(gateway.baseURL);
    expect(screen.getByLabelText('Anthropic base URL')).toHaveValue(gateway.anthropicBaseURL);
    expect(screen.getByLabelText('Gateway key')).toHaveValue('ot-abc••••••••');
    expect(screen.queryByText(new RegExp(gateway.key))).not.toBeInTheDocument();
  });

  it('reveals and hides the key', async () => {
    const { user } = renderWithProviders(<ConnectCard gateway={gateway} />);
    await user.click(screen.getByRole('button', { name: 'Show key' }));
    expect(screen.getByLabelText('Gateway key')).toHaveValue(gateway.key);
    expect(screen.getByText(/api_key="ot-abcdef0123456789"/)).toBeInTheDocument();

    await user.click(screen.getByRole('button', { name: 'Hide key' }));
    expect(screen.getByLabelText('Gateway key')).toHaveValue('ot-abc••••••••');
  });

  it('copies the full key even while it is masked', async () => {
    const { user } = renderWithProviders(<ConnectCard gateway={gateway} />);
    await user.click(screen.getByRole('button', { name: 'Copy key' }));
    await expect(navigator.clipboard.readText()).resolves.toBe(gateway.key);
  });

  it('offers Python, Node and curl snippets that copy with the full key', async () => {
    const { user } = renderWithProviders(<ConnectCard gateway={gateway} />);
    expect(screen.getByText(/from openai import OpenAI/)).toBeInTheDocument();

    await user.click(screen.getByRole('tab', { name: 'Node' }));
    expect(screen.getByText(/import OpenAI from "openai"/)).toBeInTheDocument();

    await user.click(screen.getByRole('tab', { name: 'curl' }));
    await user.click(screen.getByRole('button', { name: 'Copy curl snippet' }));
    const copied = await navigator.clipboard.readText();
    expect(copied).toContain(`curl ${gateway.baseURL}/chat/completions`);
    expect(copied).toContain(`Bearer ${gateway.key}`);
  });
});
