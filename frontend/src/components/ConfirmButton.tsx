import { Alert, Button, Group, Modal, Stack, Text, type ButtonProps } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import type { ReactNode } from 'react';

interface ConfirmButtonProps {
  /** The button's text; also the confirm button's text unless `confirmLabel` is given. */
  label: string;
  /** Accessible name of the button when the text alone is ambiguous, e.g. "Delete lab". */
  ariaLabel?: string;
  /** The dialog's title, e.g. "Delete provider lab?". */
  title: string;
  /** What will happen, shown in the dialog. */
  children: ReactNode;
  confirmLabel?: string;
  /** Runs the action; the dialog closes when it resolves and shows the error when it rejects. */
  onConfirm: () => Promise<unknown>;
  pending: boolean;
  error: Error | null;
  /** Called when the dialog opens, e.g. to clear an earlier error. */
  onOpen?: () => void;
  buttonProps?: ButtonProps;
}

/** A destructive action behind a confirmation dialog. */
export function ConfirmButton(props: ConfirmButtonProps) {
  const {
    label,
    ariaLabel,
    title,
    children,
    confirmLabel = label,
    onConfirm,
    pending,
    error,
    onOpen,
    buttonProps,
  } = props;
  const [opened, { open, close }] = useDisclosure(false, { onOpen });
  const confirm = () => onConfirm().then(close, () => undefined);
  return (
    <>
      <Button variant="subtle" color="red" size="compact-sm" aria-label={ariaLabel} onClick={open} {...buttonProps}>
        {label}
      </Button>
      <Modal opened={opened} onClose={close} title={title} centered closeButtonProps={{ 'aria-label': 'Close' }}>
        <Stack gap="md">
          <Text size="sm">{children}</Text>
          {error && !pending ? (
            <Alert color="red" role="alert" title="That did not work">
              {error.message}
            </Alert>
          ) : null}
          <Group justify="flex-end">
            <Button variant="default" onClick={close}>
              Cancel
            </Button>
            <Button color="red" loading={pending} onClick={() => void confirm()}>
              {confirmLabel}
            </Button>
          </Group>
        </Stack>
      </Modal>
    </>
  );
}
