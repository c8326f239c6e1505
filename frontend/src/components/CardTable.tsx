import { Card, Table, VisuallyHidden } from '@mantine/core';
import type { ReactNode } from 'react';

interface CardTableProps {
  /** The table's accessible name ("Aliases", "Local models"). */
  label: string;
  /** Column headers, left to right; a last, unlabelled column holds each row's actions. */
  columns: string[];
  /** Below this width the table scrolls sideways instead of squeezing its columns. */
  minWidth: number;
  /** The rows: Table.Tr elements. */
  children: ReactNode;
}

/** A bordered card holding a table of records with an actions column, as the list screens use. */
export function CardTable({ label, columns, minWidth, children }: CardTableProps) {
  return (
    <Card withBorder padding={0}>
      <Table.ScrollContainer minWidth={minWidth}>
        <Table aria-label={label} verticalSpacing="sm" horizontalSpacing="md">
          <Table.Thead>
            <Table.Tr>
              {columns.map((column) => (
                <Table.Th key={column}>{column}</Table.Th>
              ))}
              <Table.Th>
                <VisuallyHidden>Actions</VisuallyHidden>
              </Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>{children}</Table.Tbody>
        </Table>
      </Table.ScrollContainer>
    </Card>
  );
}
