import { useSearchParams } from 'react-router-dom';
import { Page } from '../../components/Page';
import { QueryResult } from '../../components/QueryResult';
import { useInfo } from '../instance';
import { TraceHealthBanner } from '../traces';
import { isOverviewRange, overallTotals, type OverviewRange } from './aggregates';
import { ConnectCard } from './ConnectCard';
import { NextSteps } from './NextSteps';
import { SavingsCard } from './SavingsCard';
import { TrafficSection } from './TrafficSection';
import { useRefreshOnNewTraces, useTrafficAggregate } from './useTraffic';

const DEFAULT_RANGE: OverviewRange = '24h';

export function OverviewPage() {
  const info = useInfo();
  const [params, setParams] = useSearchParams();
  const rangeParam = params.get('range');
  const range = isOverviewRange(rangeParam) ? rangeParam : DEFAULT_RANGE;
  const setRange = (next: OverviewRange) =>
    setParams(
      (prev) => {
        const updated = new URLSearchParams(prev);
        if (next === DEFAULT_RANGE) updated.delete('range');
        else updated.set('range', next);
        return updated;
      },
      { replace: true },
    );
  useRefreshOnNewTraces();

  // With traffic, the charts come first; until then, how to send the first request.
  const overall = useTrafficAggregate(range, '');
  const hasTraffic = overallTotals(overall.data?.series ?? []).requests > 0;
  const connect = (
    <QueryResult key="connect" query={info} what="gateway details">
      {(data) => <ConnectCard gateway={data.gateway} />}
    </QueryResult>
  );
  const traffic = <TrafficSection key="traffic" range={range} onRangeChange={setRange} />;

  return (
    <Page title="Overview" description="Your local LLM gateway: trace, cluster, distill, swap.">
      <TraceHealthBanner />
      {hasTraffic ? traffic : connect}
      {hasTraffic ? connect : traffic}
      <SavingsCard />
      <NextSteps />
    </Page>
  );
}
