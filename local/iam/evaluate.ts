/**
 * Decides one call of one principal with an independent IAM policy evaluator
 * (`@cloud-copilot/iam-simulate`): the principal's identity policies from the template, the
 * call's action, resource ARN and condition keys. Same account throughout, no resource policies,
 * no SCPs: local mode has one account and the stack grants through identity policies only.
 */
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { LOCAL_ACCOUNT } from '../config.ts';
import type { PolicyDocument } from './template.ts';

/** One authorization a request needs: what IAM would check. */
export interface Check {
  action: string;
  /** A resource ARN, or `*` for actions without resource types (ListTables, SendTaskSuccess). */
  resource: string;
  /** Request condition keys (`dynamodb:LeadingKeys`, `iam:PassedToService`, ...). */
  context?: Record<string, string | string[]>;
}

/** Who signs: the key ring's principals (local/iam/keyring.ts). */
export interface Principal {
  /** The key ring's name (`admin`, `role:ApiServiceRole1BD550DA`, `host:kvm-a`). */
  name: string;
  /** As shown in a denial: `User: <arn> is not authorized...`. */
  arn: string;
  /** Allowed everything: local mode's own bootstrap, the CLI's local tooling, tests. */
  admin?: boolean;
  policies: readonly { name: string; document: PolicyDocument }[];
  /**
   * Its principal tags (`x509Subject/CN` = host id for a runner), or a way to learn them later
   * (a runner's host id exists once it registered); undefined tags match no tagged grant.
   */
  tags?: () => Promise<Record<string, string> | undefined>;
}

/** Why a call is refused. */
export interface Denial {
  action: string;
  resource: string;
  message: string;
}

/**
 * The evaluator. Decisions are cached per principal, call and the context values its policies
 * can see (the policies of a start never change), so a busy table pays the evaluation once per
 * distinct call. A context key no condition and no policy variable of the principal names cannot
 * change its decision: it is left out of the cache key, or every item's `dynamodb:LeadingKeys`
 * would make each call a new one.
 */
export class Evaluator {
  private readonly cache = new Map<string, boolean>();
  private readonly resolved = new Map<string, { name: string; policy: PolicyDocument }[]>();
  private readonly named = new Map<string, ReadonlySet<string>>();

  /** `simulate`: the policy evaluator (a test counts its calls through it). */
  constructor(private readonly simulate: typeof runSimulation = runSimulation) {}

  /** Undefined when every check is allowed, else the first refused one. */
  async authorize(principal: Principal, checks: readonly Check[]): Promise<Denial | undefined> {
    if (principal.admin) return undefined;
    const tags = (await principal.tags?.()) ?? {};
    for (const check of checks) {
      if (!(await this.allowed(principal, check, tags))) {
        return {
          action: check.action,
          resource: check.resource,
          message: `User: ${principal.arn} is not authorized to perform: ${check.action} on resource: ${check.resource} because no identity-based policy allows the ${check.action} action`,
        };
      }
    }
    return undefined;
  }

  private async allowed(principal: Principal, check: Check, tags: Record<string, string>): Promise<boolean> {
    const context: Record<string, string | string[]> = { ...check.context };
    for (const [key, value] of Object.entries(tags)) context[`aws:PrincipalTag/${key}`] = value;
    const seen = this.namedKeys(principal);
    const relevant = Object.entries(context)
      .filter(([name]) => seen.has(name.toLowerCase()))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const key = JSON.stringify([principal.name, check.action, check.resource, relevant]);
    const known = this.cache.get(key);
    if (known !== undefined) return known;
    const simulation: Simulation = {
      identityPolicies: this.policiesOf(principal, tags),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: {
        action: check.action,
        principal: principal.arn,
        resource: { accountId: LOCAL_ACCOUNT, resource: check.resource },
        contextVariables: context,
      },
    } as unknown as Simulation;
    const result = await this.simulate(simulation, {});
    // An action or ARN the evaluator does not know is refused, as IAM refuses what no policy names.
    const allowed = result.resultType !== 'error' && result.overallResult === 'Allowed';
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, allowed);
    return allowed;
  }

  /**
   * The context keys the principal's policies name, lower-cased (IAM compares them so): every
   * condition's keys and every `${...}` policy variable.
   */
  private namedKeys(principal: Principal): ReadonlySet<string> {
    let keys = this.named.get(principal.name);
    if (!keys) {
      const found = new Set<string>();
      for (const { document } of principal.policies) {
        for (const statement of document.Statement) {
          const condition = statement.Condition;
          if (condition && typeof condition === 'object') {
            for (const operands of Object.values(condition)) {
              if (operands && typeof operands === 'object') {
                for (const name of Object.keys(operands)) found.add(name.toLowerCase());
              }
            }
          }
        }
        for (const match of JSON.stringify(document).matchAll(/\$\{([^}]+)\}/g)) {
          found.add((match[1] as string).toLowerCase());
        }
      }
      keys = found;
      this.named.set(principal.name, keys);
    }
    return keys;
  }

  /**
   * The principal's policies with its tag variables written into every `Resource`: IAM resolves
   * `${aws:PrincipalTag/...}` per request; the evaluator does so in conditions but mis-splits an
   * ARN whose resource part holds one (`...:lifeboat-host-${aws:PrincipalTag/x509Subject/CN}`,
   * the runner's queue grant), so a principal's known tag values are substituted here, as IAM
   * would. A tag value that is not a plain name is not substituted (the grant then matches nothing).
   */
  private policiesOf(principal: Principal, tags: Record<string, string>) {
    const key = JSON.stringify([principal.name, tags]);
    let policies = this.resolved.get(key);
    if (!policies) {
      policies = principal.policies.map((p) => ({
        name: p.name,
        policy: {
          ...p.document,
          Statement: p.document.Statement.map((statement) =>
            statement.Resource === undefined
              ? statement
              : { ...statement, Resource: substituteTags(statement.Resource, tags) },
          ),
        },
      }));
      this.resolved.set(key, policies);
    }
    return policies;
  }
}

const PLAIN = /^[\w.@-]+$/;

function substituteTags(resource: unknown, tags: Record<string, string>): unknown {
  if (Array.isArray(resource)) return resource.map((r) => substituteTags(r, tags));
  if (typeof resource !== 'string') return resource;
  return resource.replace(/\$\{aws:PrincipalTag\/([^}]+)\}/g, (whole, name: string) => {
    const value = tags[name];
    return value !== undefined && PLAIN.test(value) ? value : whole;
  });
}
