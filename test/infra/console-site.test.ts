/**
 * The web console in AWS (infra/console-site.ts): a private bucket read by CloudFront alone, the
 * API's paths on the same distribution (uncached, Authorization forwarded), the local gateway's
 * security headers, client routes rewritten to index.html, web/ deployed, cdk-nag acknowledged.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '#functions/api/routes.ts';
import { apiPathPatterns, CONSOLE_REWRITE_CODE, ConsoleSite } from '#infra/console-site.ts';
import { CONSOLE_CSP } from '#local/static-files.ts';
import { logicalIdsOfType, type Synthesized, synthLifeboat, withStubApp } from './synth.ts';

/** A built console as scripts/build-console.ts leaves it: index.html, assets/, the source hash. */
function stubWebRoot(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'lifeboat-web-'));
  mkdirSync(path.join(root, 'assets'));
  writeFileSync(
    path.join(root, 'index.html'),
    '<!doctype html><script src="/assets/app-1a2b.js"></script>\n',
  );
  writeFileSync(path.join(root, 'assets', 'app-1a2b.js'), 'console.log("lifeboat")\n');
  writeFileSync(path.join(root, '.source-hash'), 'abc\n');
  return root;
}

interface Behaviour {
  PathPattern?: string;
  TargetOriginId: string;
  CachePolicyId: string;
  OriginRequestPolicyId?: string;
  ResponseHeadersPolicyId: unknown;
  ViewerProtocolPolicy: string;
  AllowedMethods: string[];
  FunctionAssociations?: { EventType: string; FunctionARN: unknown }[];
}
interface DistributionConfig {
  DefaultCacheBehavior: Behaviour;
  CacheBehaviors: Behaviour[];
  Origins: {
    Id: string;
    DomainName: unknown;
    OriginAccessControlId?: unknown;
    CustomOriginConfig?: Record<string, unknown>;
  }[];
  DefaultRootObject: string;
  Logging?: Record<string, unknown>;
}

let synth: Synthesized;
let config: DistributionConfig;
const webRoot = stubWebRoot();
beforeAll(() => {
  synth = synthLifeboat({ 'lifeboat:webRoot': webRoot });
  const [distribution] = logicalIdsOfType(synth.json, 'AWS::CloudFront::Distribution');
  config = synth.json.Resources[distribution ?? '']?.Properties?.DistributionConfig as DistributionConfig;
});

/** The behaviour CloudFront picks for a path: the first pattern that matches, else the default. */
function behaviourFor(uri: string): Behaviour {
  const glob = (pattern: string) =>
    new RegExp(
      `^${pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
    );
  return (
    config.CacheBehaviors.find((b) => glob(b.PathPattern ?? '').test(uri)) ?? config.DefaultCacheBehavior
  );
}

/** A route's path with its parameters filled in (`/vms/{id}` -> `/vms/7`). */
const concrete = (routePath: string) => routePath.replace(/\{[^}]+\}/g, '7');

/** Runs the CloudFront Function's code on a viewer-request event for `uri`. */
function rewrite(uri: string): string {
  const handler = new Function(`${CONSOLE_REWRITE_CODE}\nreturn handler;`)() as (event: unknown) => {
    uri: string;
  };
  return handler({
    version: '1.0',
    context: { eventType: 'viewer-request' },
    request: { method: 'GET', uri },
  }).uri;
}

describe('console bucket', () => {
  it('is private, encrypted, logged and refuses plain HTTP', () => {
    synth.template.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      LoggingConfiguration: { LogFilePrefix: 's3/' },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
    const logicalId = synth.stack.getLogicalId(synth.stack.consoleSite?.bucket.node.defaultChild as never);
    const policies = logicalIdsOfType(synth.json, 'AWS::S3::BucketPolicy')
      .map((id) => synth.json.Resources[id]?.Properties ?? {})
      .filter((p) => JSON.stringify(p.Bucket) === JSON.stringify({ Ref: logicalId }));
    expect(policies).toHaveLength(1);
    const statements =
      (policies[0]?.PolicyDocument as { Statement: Record<string, unknown>[] } | undefined)?.Statement ?? [];
    const deny = statements.find((s) => s.Effect === 'Deny');
    expect(deny?.Condition).toEqual({ Bool: { 'aws:SecureTransport': 'false' } });
    // The one reader: CloudFront, for this distribution only.
    const allows = statements.filter((s) => s.Effect === 'Allow');
    expect(allows).toHaveLength(1);
    expect(allows[0]?.Principal).toEqual({ Service: 'cloudfront.amazonaws.com' });
    expect(allows[0]?.Action).toBe('s3:GetObject');
    expect(JSON.stringify(allows[0]?.Condition)).toContain(':distribution/');
  });

  it('is read through Origin Access Control, signed always', () => {
    synth.template.hasResourceProperties('AWS::CloudFront::OriginAccessControl', {
      OriginAccessControlConfig: {
        OriginAccessControlOriginType: 's3',
        SigningBehavior: 'always',
        SigningProtocol: 'sigv4',
      },
    });
    const s3Origin = config.Origins.find((o) => o.Id === config.DefaultCacheBehavior.TargetOriginId);
    expect(s3Origin?.OriginAccessControlId).toEqual({
      'Fn::GetAtt': [logicalIdsOfType(synth.json, 'AWS::CloudFront::OriginAccessControl')[0], 'Id'],
    });
    expect(JSON.stringify(s3Origin?.DomainName)).toContain('RegionalDomainName');
  });
});

describe('distribution', () => {
  it('sends every API route to the API origin, uncached, with all viewer headers (Authorization) but Host', () => {
    const apiId = synth.stack.getLogicalId(synth.stack.http.api.node.defaultChild as never);
    for (const route of ROUTES) {
      const behaviour = behaviourFor(concrete(route.path));
      expect(behaviour, route.path).not.toBe(config.DefaultCacheBehavior);
      const origin = config.Origins.find((o) => o.Id === behaviour.TargetOriginId);
      expect(JSON.stringify(origin?.DomainName), route.path).toContain(`"Ref":"${apiId}"`);
      expect(JSON.stringify(origin?.DomainName)).toContain('.execute-api.');
      expect(origin?.CustomOriginConfig).toMatchObject({
        OriginProtocolPolicy: 'https-only',
        OriginSSLProtocols: ['TLSv1.2'],
      });
      expect(behaviour.CachePolicyId).toBe(cloudfront.CachePolicy.CACHING_DISABLED.cachePolicyId);
      // With caching disabled this managed policy forwards Authorization (the bearer token).
      expect(behaviour.OriginRequestPolicyId).toBe(
        cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER.originRequestPolicyId,
      );
      expect(behaviour.AllowedMethods).toEqual(expect.arrayContaining([route.method, 'OPTIONS']));
      expect(behaviour.ViewerProtocolPolicy).toBe('https-only');
    }
    expect(behaviourFor('/openapi.json')).not.toBe(config.DefaultCacheBehavior);
    // Within CloudFront's default quota of 25 behaviours.
    expect(config.CacheBehaviors.length).toBeLessThan(25);
  });

  it('serves the console from the bucket, through the rewrite function', () => {
    for (const uri of ['/', '/index.html', '/assets/app-1a2b.js'])
      expect(behaviourFor(uri), uri).toBe(config.DefaultCacheBehavior);
    const fnId = logicalIdsOfType(synth.json, 'AWS::CloudFront::Function')[0];
    expect(config.DefaultCacheBehavior.FunctionAssociations).toEqual([
      { EventType: 'viewer-request', FunctionARN: { 'Fn::GetAtt': [fnId, 'FunctionARN'] } },
    ]);
    expect(config.DefaultCacheBehavior.ViewerProtocolPolicy).toBe('redirect-to-https');
    expect(config.DefaultCacheBehavior.AllowedMethods).toEqual(['GET', 'HEAD']);
    expect(config.DefaultRootObject).toBe('index.html');
    expect(config.Logging).toMatchObject({ Prefix: 'cloudfront/' });
    synth.template.hasResourceProperties('AWS::CloudFront::Function', {
      FunctionCode: CONSOLE_REWRITE_CODE,
      FunctionConfig: { Runtime: 'cloudfront-js-2.0' },
      AutoPublish: true,
    });
  });

  it('sends the local gateway’s CSP, HSTS, nosniff and frame denial with the console and the API', () => {
    const [policyId] = logicalIdsOfType(synth.json, 'AWS::CloudFront::ResponseHeadersPolicy');
    const policy = synth.json.Resources[policyId ?? '']?.Properties?.ResponseHeadersPolicyConfig as {
      SecurityHeadersConfig: Record<string, Record<string, unknown>>;
    };
    const headers = policy.SecurityHeadersConfig;
    expect(headers.ContentSecurityPolicy).toEqual({ ContentSecurityPolicy: CONSOLE_CSP, Override: true });
    expect(CONSOLE_CSP).toContain("connect-src 'self'");
    expect(headers.StrictTransportSecurity).toMatchObject({
      AccessControlMaxAgeSec: 31_536_000,
      IncludeSubdomains: true,
    });
    expect(headers.ContentTypeOptions).toEqual({ Override: true });
    expect(headers.FrameOptions).toEqual({ FrameOption: 'DENY', Override: true });
    expect(headers.ReferrerPolicy).toEqual({ ReferrerPolicy: 'no-referrer', Override: true });
    for (const behaviour of [config.DefaultCacheBehavior, ...config.CacheBehaviors])
      expect(behaviour.ResponseHeadersPolicyId).toEqual({ Ref: policyId });
  });

  it('prints the console URL', () => {
    const [distribution] = logicalIdsOfType(synth.json, 'AWS::CloudFront::Distribution');
    synth.template.hasOutput('ConsoleUrl', {
      Value: { 'Fn::Join': ['', ['https://', { 'Fn::GetAtt': [distribution, 'DomainName'] }, '/']] },
    });
  });
});

describe('the rewrite function (its code, evaluated)', () => {
  it('gives index.html for / and client routes', () => {
    expect(rewrite('/')).toBe('/index.html');
    expect(rewrite('/vms/3')).toBe('/index.html');
    expect(rewrite('/dashboard')).toBe('/index.html');
    expect(rewrite('/vms/')).toBe('/index.html');
  });

  it('leaves files alone, so a missing one is not answered with the page', () => {
    expect(rewrite('/index.html')).toBe('/index.html');
    expect(rewrite('/assets/x.js')).toBe('/assets/x.js');
    expect(rewrite('/assets/index-1a2b.css')).toBe('/assets/index-1a2b.css');
    // Never routed here (the API's behaviour comes first), and left alone if it were.
    expect(rewrite('/openapi.json')).toBe('/openapi.json');
  });
});

describe('deployment of web/', () => {
  it('copies the built console (not its source hash), assets immutable, the page revalidated and invalidated', () => {
    const deployments = logicalIdsOfType(synth.json, 'Custom::CDKBucketDeployment').map(
      (id) => synth.json.Resources[id]?.Properties ?? {},
    );
    expect(deployments).toHaveLength(2);
    const assets = deployments.find((d) => JSON.stringify(d.Include) === '["assets/*"]');
    const page = deployments.find((d) => JSON.stringify(d.Exclude) === '["assets/*"]');
    expect(assets).toMatchObject({
      Exclude: ['*'],
      Prune: false,
      SystemMetadata: { 'cache-control': 'public, max-age=31536000, immutable' },
    });
    expect(page).toMatchObject({
      Prune: true,
      SystemMetadata: { 'cache-control': 'no-cache' },
      DistributionPaths: ['/', '/index.html'],
    });
    expect(assets?.SourceObjectKeys).toEqual(page?.SourceObjectKeys);
    expect(String((page?.SourceObjectKeys as string[] | undefined)?.[0])).toMatch(/^[0-9a-f]{64}\.zip$/);
  });

  it('stages exactly the files of web/', () => {
    withStubApp({ 'lifeboat:webRoot': webRoot }, ({ app }) => {
      const assembly = app.synth();
      const dirs = readdirSync(assembly.directory).filter((d) => d.startsWith('asset.'));
      const staged = dirs.find((d) => readdirSync(path.join(assembly.directory, d)).includes('index.html'));
      expect(staged).toBeDefined();
      const dir = path.join(assembly.directory, staged ?? '');
      expect(readdirSync(dir).sort()).toEqual(['assets', 'index.html']);
      expect(readFileSync(path.join(dir, 'assets', 'app-1a2b.js'), 'utf8')).toContain('lifeboat');
    });
  });

  it('refuses to deploy a console that was never built', () => {
    const stack = new Stack(new App(), 'Bare');
    const httpApi = new apigw.HttpApi(stack, 'Api');
    const empty = mkdtempSync(path.join(tmpdir(), 'lifeboat-web-empty-'));
    expect(
      () =>
        new ConsoleSite(stack, 'Console', { httpApi, routes: ROUTES, webRoot: empty, skipBundling: false }),
    ).toThrow(`${empty} holds no built console: run \`npm run build:console\``);
  });
});

describe('API path patterns', () => {
  it('one per first segment of the routes, none covering the console’s files', () => {
    expect(apiPathPatterns(ROUTES)).toContain('/vms*');
    expect(apiPathPatterns(ROUTES)).toContain('/openapi.json*');
    expect(
      apiPathPatterns([
        { method: 'GET', path: '/b/{id}' },
        { method: 'GET', path: '/b' },
      ]),
    ).toEqual(['/b*']);
    expect(() => apiPathPatterns([{ method: 'GET', path: '/assets/list' }])).toThrow(
      "API path pattern /assets* would cover the console's files",
    );
    expect(() => apiPathPatterns([{ method: 'GET', path: '/in' }])).toThrow('/in* would cover');
    expect(() => apiPathPatterns([{ method: 'GET', path: '/{proxy+}' }])).toThrow(
      'first segment must be fixed',
    );
  });
});

describe('consoleSite: false', () => {
  it('leaves out the bucket, the distribution and the console URL', () => {
    const plain = synthLifeboat({ consoleSite: 'false' });
    expect(plain.stack.consoleSite).toBeUndefined();
    plain.template.resourceCountIs('AWS::CloudFront::Distribution', 0);
    plain.template.resourceCountIs('AWS::S3::Bucket', 0);
    expect(Object.keys(plain.template.findOutputs('*'))).not.toContain('ConsoleUrl');
    expect(Object.keys(synth.template.findOutputs('*'))).toContain('ConsoleUrl');
  });
});

describe('cdk-nag', () => {
  it('passes with each console finding acknowledged with its reason', () => {
    // synthLifeboat ran AwsSolutions: it throws on an unacknowledged finding.
    const reasons = (construct: { node: { metadata: { type: string; data: unknown }[] } }) =>
      Object.assign(
        {},
        ...construct.node.metadata
          .filter((m) => m.type === 'aws:cdk:acknowledged-rules')
          .map((m) => m.data as Record<string, string>),
      ) as Record<string, string>;
    const distribution = reasons(synth.stack.consoleSite?.distribution as never);
    expect(Object.keys(distribution).join(' ')).toMatch(/CFR4/);
    expect(Object.values(distribution).join(' ')).toContain('default *.cloudfront.net certificate');
  });
});
