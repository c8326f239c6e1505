import { Anchor, Card, List, Text, Title } from '@mantine/core';
import { Link } from 'react-router-dom';

const steps = [
  { to: '/traces', label: 'Traces', text: 'every request through the gateway is recorded.' },
  { to: '/clusters', label: 'Clusters', text: 'similar requests are grouped so you see what your app really asks.' },
  { to: '/datasets', label: 'Datasets', text: 'drag the clusters worth learning from into a dataset.' },
  { to: '/distill', label: 'Distill', text: 'train a small local student model on that dataset.' },
  { to: '/models', label: 'Models & Aliases', text: 'swap an alias such as smart to the student, no code change.' },
];

export function NextSteps() {
  return (
    <Card withBorder padding="lg">
      <Title order={2} size="h4" mb="xs">
        What happens next
      </Title>
      <List type="ordered" spacing="xs">
        {steps.map((step) => (
          <List.Item key={step.to}>
            <Anchor component={Link} to={step.to}>
              {step.label}
            </Anchor>
            <Text span c="dimmed">
              {' '}
              — {step.text}
            </Text>
          </List.Item>
        ))}
      </List>
    </Card>
  );
}
