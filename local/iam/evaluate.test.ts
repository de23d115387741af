import { runSimulation } from '@cloud-copilot/iam-simulate';
import { beforeEach, describe, expect, it } from 'vitest';
import { Evaluator, type Principal } from './evaluate.ts';

// Counts the evaluations, which still run the real evaluator.
const simulations = { count: 0 };
const counting: typeof runSimulation = (...args) => {
  simulations.count++;
  return runSimulation(...args);
};

const TABLE = 'arn:aws:dynamodb:us-east-1:000000000000:table/lifeboat-progress';
const getItem = (leading: string) => ({
  action: 'dynamodb:GetItem',
  resource: TABLE,
  context: { 'dynamodb:LeadingKeys': [leading] },
});

/** A role granted the table whatever the keys (as the Lambdas' roles are). */
const role: Principal = {
  name: 'role:Api',
  arn: 'arn:aws:iam::000000000000:role/Api',
  policies: [
    {
      name: 'table',
      document: { Statement: [{ Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: TABLE }] },
    },
  ],
};

/** An IAM policy variable, not a template placeholder: the keys under the host's own id. */
const OWN_KEYS = '$' + '{aws:PrincipalTag/hostId}/*';

/** A host granted only the items whose key starts with its id (as a runner is). */
const host: Principal = {
  name: 'host:7',
  arn: 'arn:aws:iam::000000000000:role/host-7',
  policies: [
    {
      name: 'own-keys',
      document: {
        Statement: [
          {
            Effect: 'Allow',
            Action: 'dynamodb:GetItem',
            Resource: TABLE,
            // Lower case on purpose: IAM compares condition keys case-insensitively.
            Condition: {
              'ForAllValues:StringLike': { 'dynamodb:leadingkeys': [OWN_KEYS] },
            },
          },
        ],
      },
    },
  ],
  tags: async () => ({ hostId: '7' }),
};

describe('Evaluator', () => {
  beforeEach(() => {
    simulations.count = 0;
  });

  it('evaluates once the calls of a principal whose policies name no key of their context', async () => {
    const evaluator = new Evaluator(counting);
    for (const key of ['7/a', '8/b', '9/c']) {
      expect(await evaluator.authorize(role, [getItem(key)])).toBeUndefined();
    }
    expect(simulations.count).toBe(1);
  });

  it('keeps apart the calls whose context a condition names: its own keys allowed, another host refused', async () => {
    const evaluator = new Evaluator(counting);
    expect(await evaluator.authorize(host, [getItem('7/exec-1')])).toBeUndefined();
    const denial = await evaluator.authorize(host, [getItem('8/exec-1')]);
    expect(denial?.message).toBe(
      `User: ${host.arn} is not authorized to perform: dynamodb:GetItem on resource: ${TABLE} because no identity-based policy allows the dynamodb:GetItem action`,
    );
    // Asked again, each answer comes from the cache and stays what it was.
    expect(await evaluator.authorize(host, [getItem('7/exec-1')])).toBeUndefined();
    expect(await evaluator.authorize(host, [getItem('8/exec-1')])).toBeDefined();
    expect(simulations.count).toBe(2);
  });
});
