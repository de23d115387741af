/**
 * What IAM checks for a Lambda Invoke (`POST /2015-03-31/functions/{name}/invocations`):
 * `lambda:InvokeFunction` on the function's ARN (a name, a partial or a full ARN, with or without
 * a qualifier, as the API takes them).
 */
import { LOCAL_ACCOUNT } from '../../config.ts';
import type { Check } from '../evaluate.ts';

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

/** The function ARN a FunctionName stands for in `region`. */
export function functionArn(name: string, region: string, qualifier?: string | null): string {
  const full = /^arn:[^:]+:lambda:[^:]*:[^:]*:function:[^:]+(:[^:]+)?$/.test(name)
    ? name
    : /^\d{12}:function:/.test(name)
      ? `arn:aws:lambda:${region}:${name}`
      : `arn:aws:lambda:${region}:${LOCAL_ACCOUNT}:function:${name}`;
  return qualifier && !/:function:[^:]+:[^:]+$/.test(full) ? `${full}:${qualifier}` : full;
}

/** The checks of one Lambda API request; undefined for a path the endpoint does not serve. */
export function lambdaChecks(method: string, url: URL, region: string): Check[] | undefined {
  const match = INVOKE_PATH.exec(url.pathname);
  if (method !== 'POST' || !match?.[1]) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(match[1]);
  } catch {
    return undefined;
  }
  return [
    {
      action: 'lambda:InvokeFunction',
      resource: functionArn(name, region, url.searchParams.get('Qualifier')),
    },
  ];
}
