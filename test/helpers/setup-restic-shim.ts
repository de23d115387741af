// Setup file of the `integration` project: restic with cheap keys (test/helpers/restic-shim.ts).
import { installResticShim } from './restic-shim.ts';

installResticShim();
