import { Page } from '../../components/Page';
import { QueryResult } from '../../components/QueryResult';
import { useInfo } from '../instance';
import { ConnectCard } from './ConnectCard';
import { NextSteps } from './NextSteps';

export function OverviewPage() {
  const info = useInfo();
  return (
    <Page title="Overview" description="Your local LLM gateway: trace, cluster, distill, swap.">
      <QueryResult query={info} what="gateway details">
        {(data) => <ConnectCard gateway={data.gateway} />}
      </QueryResult>
      <NextSteps />
    </Page>
  );
}
