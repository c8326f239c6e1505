import { Page } from '../../components/Page';
import { QueryResult } from '../../components/QueryResult';
import { useInfo } from '../instance';
import { InstanceCard } from './InstanceCard';
import { ServerCard } from './ServerCard';

export function SettingsPage() {
  const info = useInfo();
  return (
    <Page title="Settings" description="This OpenTracy instance and how it is running.">
      <QueryResult query={info} what="instance info">
        {(data) => <InstanceCard info={data} />}
      </QueryResult>
      <ServerCard />
    </Page>
  );
}
