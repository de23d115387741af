/**
 * Local mode's principals and their per-start access keys: one per role of the synthesized
 * template (each Lambda function's, each state machine's, the schedules'), one per host's
 * runner (the runners' managed policy with principal tag `x509Subject/CN` = its host id), the
 * in-process functions' union of every function role (until each runs with its own key), and
 * the admin ("operator"): local mode's own bootstrap, the CLI's local tooling and tests, allowed
 * everything. Every endpoint finds the signer's principal by access key and, with enforcement on
 * (the default; `LIFEBOAT_LOCAL_IAM=off` turns it off for debugging), refuses what its policies
 * do not allow.
 */
import type { CfnTemplate } from '#infra/definition.ts';
import { LOCAL_ACCOUNT } from '../config.ts';
import { type LocalCredentials, newLocalCredentials, writeLocalCredentials } from '../credentials.ts';
import { LOCAL_SCHEDULE_ROLE_ARN } from '../env.ts';
import { localRoleArn } from '../template-names.ts';
import { type Check, type Denial, Evaluator, type Principal } from './evaluate.ts';
import { type TemplatePolicies, templatePolicies } from './template.ts';

/** Principal names of the key ring. */
export const ADMIN = 'admin';
/** The in-process Lambdas' principal: every function role's policies together. */
export const FUNCTIONS = 'functions';
/** The local Step Functions runtime's principal: every state machine role's policies together. */
export const STATE_MACHINES = 'state-machines';
export const rolePrincipal = (logicalId: string) => `role:${logicalId}`;
export const hostPrincipal = (hostName: string) => `host:${hostName}`;

/** `LIFEBOAT_LOCAL_IAM=off` (or `0`, `false`) switches enforcement off: signatures are still checked. */
export function enforcementFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = (env.LIFEBOAT_LOCAL_IAM ?? '').trim().toLowerCase();
  return !['off', '0', 'false', 'no'].includes(value);
}

interface Entry {
  credentials: LocalCredentials;
  principal: Principal;
}

/** Finds a host's id by its name (the hosts table), once it has registered. */
export type HostLookup = (hostName: string) => Promise<string | undefined>;

/** The key ring and evaluator of one start of local mode. */
export class LocalIam {
  readonly admin: LocalCredentials;
  readonly enforcing: boolean;
  region: string;
  private readonly byKey = new Map<string, Entry>();
  private readonly byName = new Map<string, Entry>();
  private readonly evaluator = new Evaluator();
  private readonly roleAliases = new Map<string, string>();
  /** The host id each runner principal's tag carries, once known. */
  private readonly hostIds = new Map<string, string>();
  private policies: TemplatePolicies | undefined;
  private hostLookup: HostLookup | undefined;
  private keyFile: string | undefined;
  private saving: Promise<void> = Promise.resolve();

  private readonly log: (entry: Record<string, unknown>) => void;

  /**
   * `log` gets one line per refused call (principal, action, resource): a denial a client
   * swallows (a best-effort wake-up) still shows there.
   */
  constructor(
    opts: {
      admin?: LocalCredentials;
      enforce?: boolean;
      region?: string;
      log?: (entry: Record<string, unknown>) => void;
    } = {},
  ) {
    this.log = opts.log ?? (() => {});
    this.admin = opts.admin ?? newLocalCredentials();
    this.enforcing = opts.enforce ?? enforcementFromEnv();
    this.region = opts.region ?? 'us-east-1';
    this.add(
      {
        name: ADMIN,
        arn: `arn:aws:iam::${LOCAL_ACCOUNT}:user/lifeboat-local-admin`,
        admin: true,
        policies: [],
      },
      this.admin,
    );
  }

  /** An admin-only ring that enforces nothing: what a bare key given to an endpoint means. */
  static adminOnly(credentials: LocalCredentials): LocalIam {
    return new LocalIam({ admin: credentials, enforce: false });
  }

  private add(principal: Principal, credentials: LocalCredentials = newLocalCredentials()): LocalCredentials {
    const entry = { principal, credentials };
    this.byKey.set(credentials.accessKeyId, entry);
    this.byName.set(principal.name, entry);
    if (this.keyFile) void this.save();
    return credentials;
  }

  /**
   * Keep every key in `file` (0600, local/credentials.ts), now and whenever a principal is added
   * (a runner enrolled after the start); resolves once written.
   */
  persistTo(file: string): Promise<void> {
    this.keyFile = file;
    return this.save();
  }

  private save(): Promise<void> {
    const file = this.keyFile;
    if (!file) return this.saving;
    this.saving = this.saving
      .catch(() => {})
      .then(() => writeLocalCredentials(file, this.admin, this.keys()));
    return this.saving;
  }

  /** The signer of `accessKeyId`, if it is one of this start's keys. */
  lookup(accessKeyId: string): Entry | undefined {
    return this.byKey.get(accessKeyId);
  }

  /** Every principal's key by name (for the 0600 key file). */
  keys(): Record<string, LocalCredentials> {
    return Object.fromEntries([...this.byName].map(([name, e]) => [name, e.credentials]));
  }

  /**
   * Give every role of `template` (and the function and state machine unions) a principal and a
   * key, with its policies resolved to local ARNs in `region`. The role the functions are told to
   * pass to the scheduler locally (`LOCAL_SCHEDULE_ROLE_ARN`) is taken as the one the API's
   * `SCHEDULER_ROLE_ARN` names in the template.
   */
  loadTemplate(template: CfnTemplate, region: string): void {
    this.region = region;
    const policies = templatePolicies(template, region);
    this.policies = policies;
    for (const role of Object.values(policies.roles)) {
      this.add({
        name: rolePrincipal(role.logicalId),
        arn: assumedRoleArn(role.logicalId),
        policies: role.policies,
      });
    }
    const union = (name: string, roleIds: string[]) =>
      this.add({
        name,
        arn: assumedRoleArn(name),
        policies: roleIds.flatMap((id) => policies.roles[id]?.policies ?? []),
      });
    union(FUNCTIONS, [...new Set(Object.values(policies.functionRoles))]);
    union(STATE_MACHINES, [...new Set(Object.values(policies.machineRoles))]);
    const apiEnv = template.Resources[
      Object.entries(template.Resources).find(
        ([, r]) =>
          r.Type === 'AWS::Lambda::Function' &&
          r.Metadata?.['aws:cdk:path'] === `${stackOf(template)}/Api/Resource`,
      )?.[0] ?? ''
    ]?.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined;
    const scheduleRole = (
      apiEnv?.Variables?.SCHEDULER_ROLE_ARN as { 'Fn::GetAtt'?: unknown[] } | undefined
    )?.['Fn::GetAtt']?.[0];
    if (typeof scheduleRole === 'string')
      this.roleAliases.set(LOCAL_SCHEDULE_ROLE_ARN, localRoleArn(scheduleRole));
  }

  /** The template's policies, once loaded. */
  get template(): TemplatePolicies | undefined {
    return this.policies;
  }

  /** The key of role `roleLogicalId` (a Lambda function's, a state machine's, a schedule's). */
  credentialsForRole(roleLogicalId: string): LocalCredentials {
    const entry = this.byName.get(rolePrincipal(roleLogicalId));
    if (!entry) throw new Error(`the template has no role ${roleLogicalId}`);
    return entry.credentials;
  }

  /** The key of the role of function `functionId` (manifest id), for a per-function worker. */
  credentialsForFunction(functionId: string): LocalCredentials {
    const role = this.policies?.functionRoles[functionId];
    if (!role) throw new Error(`the template has no function ${functionId}`);
    return this.credentialsForRole(role);
  }

  /** The key of a named principal (`FUNCTIONS`, `STATE_MACHINES`, `ADMIN`). */
  credentialsFor(name: string): LocalCredentials {
    const entry = this.byName.get(name);
    if (!entry) throw new Error(`no local principal ${name} (is the template loaded?)`);
    return entry.credentials;
  }

  /** How a runner's host id is found once it registered (hosts table, by name). */
  setHostLookup(lookup: HostLookup): void {
    this.hostLookup = lookup;
  }

  /**
   * The key of the runner of host `hostName`: the runners' policy, with principal tag
   * `x509Subject/CN` = its host id, as its Roles Anywhere certificate gives it in AWS. The id is
   * `hostId` when known, else looked up by name once the runner has registered (a new runner
   * registers before its first AWS call); until then its tagged grants match nothing.
   */
  credentialsForHost(host: { name: string; id?: string | number }): LocalCredentials {
    const name = hostPrincipal(host.name);
    const existing = this.byName.get(name);
    const knownId = this.hostIds.get(name);
    // A host deleted and registered again under its name is a new host: a new key and tag; the
    // old host's key stops working.
    if (existing && (host.id === undefined || knownId === undefined || knownId === String(host.id)))
      return existing.credentials;
    if (existing) this.byKey.delete(existing.credentials.accessKeyId);
    const runner = this.policies?.runner;
    const tag = this.policies?.runnerHostTag ?? 'x509Subject/CN';
    let id = host.id === undefined ? undefined : String(host.id);
    if (id !== undefined) this.hostIds.set(name, id);
    const tags = async () => {
      if (id === undefined) {
        id = await this.hostLookup?.(host.name);
        if (id !== undefined) this.hostIds.set(name, id);
      }
      return id === undefined ? undefined : { [tag]: id };
    };
    return this.add({
      name,
      arn: `arn:aws:sts::${LOCAL_ACCOUNT}:assumed-role/RunnerRole/${host.name}`,
      policies: runner ? [runner] : [],
      tags,
    });
  }

  /** The principal a role ARN names (a schedule's `Target.RoleArn`), aliases followed. */
  principalOfRoleArn(arn: string): Principal | undefined {
    const canonical = this.roleAliases.get(arn) ?? arn;
    const logicalId = canonical.slice(canonical.lastIndexOf('/') + 1);
    return this.byName.get(rolePrincipal(logicalId))?.principal;
  }

  /**
   * Undefined when the role a schedule runs as (`Target.RoleArn`) may invoke its target
   * `functionArn`, as EventBridge Scheduler needs; else why not (also when no such role exists).
   */
  async authorizeScheduleTarget(roleArn: string, functionArn: string): Promise<Denial | undefined> {
    if (!this.enforcing) return undefined;
    const check = { action: 'lambda:InvokeFunction', resource: functionArn };
    const principal = this.principalOfRoleArn(roleArn);
    if (!principal) {
      return { ...check, message: `The execution role ${roleArn} of the schedule does not exist` };
    }
    return this.authorize(principal, [check]);
  }

  /**
   * Undefined when `principal` may make every call of `checks` (or enforcement is off), else the
   * first refused one. Role ARNs passed (`iam:PassRole`) are compared under their template name.
   */
  async authorize(principal: Principal, checks: readonly Check[]): Promise<Denial | undefined> {
    if (!this.enforcing || principal.admin) return undefined;
    const canonical = checks.map((c) =>
      c.action === 'iam:PassRole' ? { ...c, resource: this.roleAliases.get(c.resource) ?? c.resource } : c,
    );
    const denial = await this.evaluator.authorize(principal, canonical);
    if (denial) {
      this.log({
        level: 'warn',
        msg: 'access denied',
        principal: principal.name,
        action: denial.action,
        resource: denial.resource,
      });
    }
    return denial;
  }
}

function stackOf(template: CfnTemplate): string {
  for (const r of Object.values(template.Resources)) {
    const path = r.Metadata?.['aws:cdk:path'];
    if (typeof path === 'string' && path.includes('/')) return path.slice(0, path.indexOf('/'));
  }
  return 'Lifeboat';
}

/** The session ARN a role's calls carry in AWS (what a denial names). */
function assumedRoleArn(role: string): string {
  return `arn:aws:sts::${LOCAL_ACCOUNT}:assumed-role/${role}/local`;
}
