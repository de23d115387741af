/**
 * Every Lambda function of Lambdas: one list read by the CDK app (one NodejsFunction each) and by
 * local mode (which calls the same handler modules in process). Pure data.
 */
export interface FunctionSpec {
  /** Construct id in the CDK app; local mode maps ARNs in the synthesized ASL back through it. */
  id: string;
  /** Source file, relative to the project root. */
  entry: string;
  /** Exported handler name. */
  handler: string;
  description: string;
  timeoutSeconds: number;
}

export const FUNCTIONS: readonly FunctionSpec[] = [
  {
    id: 'Api',
    entry: 'functions/api/handler.ts',
    handler: 'handler',
    description: 'HTTP API',
    timeoutSeconds: 29,
  },
  {
    id: 'Authorizer',
    entry: 'functions/api/authorizer.ts',
    handler: 'handler',
    description: 'HTTP API authorizer: who a bearer token is (reads users and tokens only)',
    timeoutSeconds: 10,
  },
  {
    id: 'Dispatcher',
    entry: 'functions/dispatcher/handler.ts',
    handler: 'handler',
    description: 'Starts queued operations within the limits',
    timeoutSeconds: 60,
  },
  {
    id: 'AdmitBackup',
    entry: 'functions/tasks/admit-backup.ts',
    handler: 'handler',
    description: 'Backup step: check, lock the VM, create the image, build the host task',
    timeoutSeconds: 30,
  },
  {
    id: 'CommitBackup',
    entry: 'functions/tasks/commit-backup.ts',
    handler: 'handler',
    description: 'Backup step: image READY with sizes, BACKUP_IDS',
    timeoutSeconds: 30,
  },
  {
    id: 'AdmitRestore',
    entry: 'functions/tasks/admit-restore.ts',
    handler: 'handler',
    description: 'Restore step: check and build the host task',
    timeoutSeconds: 30,
  },
  {
    id: 'CommitRestore',
    entry: 'functions/tasks/commit-restore.ts',
    handler: 'handler',
    description: 'Restore step: record the result',
    timeoutSeconds: 30,
  },
  {
    id: 'AdmitMaintenance',
    entry: 'functions/tasks/admit-maintenance.ts',
    handler: 'handler',
    description: 'Maintenance step (delete, download, verify, monitor): check and build the host task',
    timeoutSeconds: 30,
  },
  {
    id: 'CommitMaintenance',
    entry: 'functions/tasks/commit-maintenance.ts',
    handler: 'handler',
    description: 'Maintenance step: record the result (deleted image record, capacity, download)',
    timeoutSeconds: 30,
  },
  {
    id: 'MarkFailed',
    entry: 'functions/tasks/mark-failed.ts',
    handler: 'handler',
    description: 'Any operation: record the error, image to ERROR, VM unlocked',
    timeoutSeconds: 30,
  },
  {
    id: 'Release',
    entry: 'functions/tasks/release.ts',
    handler: 'handler',
    description: 'Any operation: end the execution record, release the slot, wake the dispatcher',
    timeoutSeconds: 30,
  },
];
