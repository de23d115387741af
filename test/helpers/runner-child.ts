/**
 * A runner cut down to what a crash test needs, in a process of its own: the daemon's journal,
 * process registry and executor over the host's real drivers, in state folder `stateDir`. It
 * accepts the one task given as JSON (`argv[2]`: `{ stateDir, libvirtUri, task }`), prints
 * `accepted`, and runs until killed (the test SIGKILLs it mid-task, then reconciles as the next
 * runner would). Task answers go nowhere: no state machine waits here.
 */
import { join } from 'node:path';
import { Task } from '#core/contracts/tasks.ts';
import { watchProcessGroups } from '#drivers/exec.ts';
import { hostDrivers } from '#runner/drivers.ts';
import { Executor } from '#runner/executor.ts';
import { Journal } from '#runner/journal.ts';
import { silentLogger } from '#runner/log.ts';
import { PROCESS_GROUPS_FILE, ProcessRegistry } from '#runner/process-registry.ts';
import { Reporter } from '#runner/reporter.ts';
import { hostKeyPath, sealedSecretResolver } from '#runner/sealed-secrets.ts';

const input = JSON.parse(process.argv[2] ?? '{}') as { stateDir: string; libvirtUri: string; task: unknown };
const { stateDir } = input;
const processes = ProcessRegistry.open(join(stateDir, PROCESS_GROUPS_FILE), silentLogger);
watchProcessGroups(processes.hooks);
const journal = await Journal.open(join(stateDir, 'journal.jsonl'));
const nowhere = { sendSuccess: async () => {}, sendFailure: async () => {}, sendHeartbeat: async () => {} };
const executor = new Executor({
  journal,
  reporter: new Reporter(nowhere, silentLogger, 1),
  drivers: hostDrivers(input.libvirtUri),
  secrets: sealedSecretResolver(hostKeyPath(stateDir)),
  progress: async () => {},
  stateDir,
  libvirtUri: input.libvirtUri,
  log: silentLogger,
});
await executor.accept(Task.parse(input.task));
process.stdout.write('accepted\n');
setInterval(() => {}, 60_000);
