/**
 * Figures people watch and someone told, in the CDK template: alarms on Lifeboat's own metrics
 * (BackupsFailed, VerifyFailures, MissedBackups) to the one SNS topic, the topic named to the
 * functions that notify and publishable by them alone, the webhook and the missed-backup check
 * set from context.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { FUNCTIONS } from '#functions/manifest.ts';
import { findLogicalId } from '#infra/definition.ts';
import { actionsOf, logicalIdsOfType, type Synthesized, statementsOfRole, synthLifeboat } from './synth.ts';

const NOTIFIERS = ['Release', 'Dispatcher', 'MarkFailed'];

let synth: Synthesized;
let topicId: string;
beforeAll(() => {
  synth = synthLifeboat({ notifyWebhookUrl: 'https://hooks.example.com/lifeboat', missedCheckMinutes: '7' });
  [topicId = ''] = logicalIdsOfType(synth.json, 'AWS::SNS::Topic');
});

function props(id: string): Record<string, unknown> {
  return synth.json.Resources[findLogicalId(synth.json, 'AWS::Lambda::Function', id) ?? '']?.Properties ?? {};
}
const envOf = (id: string) => (props(id).Environment as { Variables: Record<string, unknown> }).Variables;
function actions(id: string): string[] {
  const role = props(id).Role as { 'Fn::GetAtt': string[] };
  return statementsOfRole(synth.json, role['Fn::GetAtt'][0] ?? '').flatMap(actionsOf);
}

describe('alarms on Lifeboat metrics', () => {
  it('alarm on any failed backup, any failed verification and any missed backup, to the topic', () => {
    const alarms = logicalIdsOfType(synth.json, 'AWS::CloudWatch::Alarm')
      .map((id) => synth.json.Resources[id]?.Properties ?? {})
      .filter((a) => a.Namespace === 'Lifeboat');
    const byName = Object.fromEntries(alarms.map((a) => [a.MetricName as string, a]));
    expect(Object.keys(byName).sort()).toEqual(['BackupsFailed', 'MissedBackups', 'VerifyFailures']);
    for (const [name, statistic, period] of [
      ['BackupsFailed', 'Sum', 300],
      ['VerifyFailures', 'Sum', 300],
      ['MissedBackups', 'Maximum', 900],
    ] as const) {
      expect(byName[name], name).toMatchObject({
        Statistic: statistic,
        Period: period,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: topicId }],
      });
      // The deployment's totals: the EMF lines publish each set without dimensions too.
      expect(byName[name]?.Dimensions, name).toBeUndefined();
    }
  });
});

describe('notifications', () => {
  it('names the topic and the webhook to the functions that notify, and lets only them publish', () => {
    for (const id of NOTIFIERS) {
      expect(envOf(id).NOTIFY_TOPIC_ARN, id).toEqual({ Ref: topicId });
      expect(envOf(id).NOTIFY_WEBHOOK_URL, id).toBe('https://hooks.example.com/lifeboat');
      expect(actions(id), id).toContain('sns:Publish');
    }
    for (const spec of FUNCTIONS.filter((f) => !NOTIFIERS.includes(f.id))) {
      expect(envOf(spec.id).NOTIFY_TOPIC_ARN, spec.id).toBeUndefined();
      expect(actions(spec.id), spec.id).not.toContain('sns:Publish');
    }
    expect(envOf('Dispatcher').MISSED_CHECK_MINUTES).toBe('7');
  });

  it('without a webhook, none is named; a bad webhook URL fails the synth without echoing it', () => {
    const plain = synthLifeboat();
    const id = findLogicalId(plain.json, 'AWS::Lambda::Function', 'Release') ?? '';
    const fnEnv = plain.json.Resources[id]?.Properties?.Environment as
      | { Variables: Record<string, unknown> }
      | undefined;
    expect(fnEnv?.Variables.TABLE_VMS).toBeDefined();
    const env = fnEnv?.Variables ?? {};
    expect(env.NOTIFY_WEBHOOK_URL).toBeUndefined();
    expect(() => synthLifeboat({ notifyWebhookUrl: 'ftp://user:pw@host/x' })).toThrow(
      /^CDK context notifyWebhookUrl must be an http or https URL$/,
    );
  });
});
