/**
 * The web console in AWS, served as the local gateway serves it: one CloudFront origin for both
 * the console's files (a private S3 bucket, read only by CloudFront through Origin Access
 * Control) and the HTTP API (every path the API has a route under goes to API Gateway, uncached,
 * with the viewer's Authorization header), so the console calls its API on its own origin and
 * its Content-Security-Policy can allow that origin alone. The files are web/, built by
 * scripts/build-console.ts (infra/app.ts runs it before synth); nothing is fetched from
 * elsewhere at run time.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CfnOutput, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as deploy from 'aws-cdk-lib/aws-s3-deployment';
import { Construct } from 'constructs';
import { CONSOLE_CSP } from '#local/static-files.ts';
import type { ApiRoute } from './api.ts';

/**
 * The CloudFront Function (cloudfront-js-2.0, viewer request) of the console's behaviour: `/`
 * and client routes (a path whose last segment has no dot) get index.html, files (`/assets/x.js`)
 * go to the bucket as asked, so a missing file is an error rather than the page. API paths never
 * reach it: their behaviours come first. Plain JavaScript, as CloudFront runs it; the tests
 * evaluate this very text.
 */
export const CONSOLE_REWRITE_CODE = `function handler(event) {
  var request = event.request;
  var uri = request.uri;
  var last = uri.substring(uri.lastIndexOf('/') + 1);
  if (last.indexOf('.') === -1) request.uri = '/index.html';
  return request;
}
`;

/** CloudFront's default quota of cache behaviours per distribution (the console's own is one). */
const MAX_BEHAVIOURS = 25;

/**
 * The CloudFront path patterns of the API: one `/<first segment>*` per first segment of the
 * routes (`/vms*` covers `/vms` and `/vms/{id}/backup`), so any path the API knows, or answers
 * 404 for under its prefixes, reaches the API. None may cover the console's own files.
 */
export function apiPathPatterns(routes: readonly ApiRoute[]): string[] {
  const patterns = new Set<string>();
  for (const route of routes) {
    const first = route.path.split('/')[1] ?? '';
    if (first === '' || first.includes('{'))
      throw new Error(`Route ${route.path}: its first segment must be fixed to route it through CloudFront`);
    patterns.add(`/${first}*`);
  }
  for (const pattern of patterns) {
    if (['/index.html', '/assets/'].some((file) => file.startsWith(pattern.slice(0, -1))))
      throw new Error(`API path pattern ${pattern} would cover the console's files`);
  }
  if (patterns.size >= MAX_BEHAVIOURS)
    throw new Error(`${patterns.size} API path prefixes: CloudFront allows ${MAX_BEHAVIOURS} behaviours`);
  return [...patterns].sort();
}

export interface ConsoleSiteProps {
  httpApi: HttpApi;
  /** The API's routes: their prefixes are routed to the API origin. */
  routes: readonly ApiRoute[];
  /** The built console (index.html, assets/). */
  webRoot: string;
  /**
   * Whether asset bundling is skipped (template tests, local mode): then a web root without a
   * build deploys a placeholder page instead of failing, as Lambda code is not built then either.
   */
  skipBundling: boolean;
}

/** The console's bucket, distribution and deployment of web/. */
export class ConsoleSite extends Construct {
  readonly bucket: s3.Bucket;
  readonly logBucket: s3.Bucket;
  readonly distribution: cloudfront.Distribution;
  readonly rewrite: cloudfront.Function;
  readonly headers: cloudfront.ResponseHeadersPolicy;
  /** The hashed assets (immutable), then the rest (index.html: revalidated). */
  readonly deployments: deploy.BucketDeployment[];

  constructor(scope: Construct, id: string, props: ConsoleSiteProps) {
    super(scope, id);
    // CloudFront's standard logs and the site bucket's access logs; CloudFront writes its logs
    // with an ACL, so this bucket keeps ACLs (objects owned by the writer).
    this.logBucket = new s3.Bucket(this, 'Logs', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.OBJECT_WRITER,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // Retained, as the deployments leave their files when the stack is deleted (retainOnDelete).
    this.bucket = new s3.Bucket(this, 'Files', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.logBucket,
      serverAccessLogsPrefix: 's3/',
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.rewrite = new cloudfront.Function(this, 'Rewrite', {
      comment: 'Lifeboat console: client routes get index.html',
      runtime: cloudfront.FunctionRuntime.JS_2_0,
      code: cloudfront.FunctionCode.fromInline(CONSOLE_REWRITE_CODE),
    });
    // What the local gateway sends with the console's files (local/static-files.ts), plus HSTS
    // and frame denial; on API answers too (JSON, never framed).
    this.headers = new cloudfront.ResponseHeadersPolicy(this, 'SecurityHeaders', {
      comment: 'Lifeboat console: same-origin CSP, HSTS, nosniff, no framing, no referrer',
      securityHeadersBehavior: {
        contentSecurityPolicy: { contentSecurityPolicy: CONSOLE_CSP, override: true },
        strictTransportSecurity: {
          accessControlMaxAge: Duration.days(365),
          includeSubdomains: true,
          override: true,
        },
        contentTypeOptions: { override: true },
        frameOptions: { frameOption: cloudfront.HeadersFrameOption.DENY, override: true },
        referrerPolicy: { referrerPolicy: cloudfront.HeadersReferrerPolicy.NO_REFERRER, override: true },
      },
    });
    const stack = Stack.of(this);
    const apiOrigin = new origins.HttpOrigin(
      `${props.httpApi.apiId}.execute-api.${stack.region}.${stack.urlSuffix}`,
      {
        protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
        originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
      },
    );
    // Never cached: each request is the caller's own (its token). The origin request policy
    // forwards every viewer header but Host (API Gateway answers to its own name), and with
    // caching disabled that includes Authorization.
    const apiBehaviour: cloudfront.BehaviorOptions = {
      origin: apiOrigin,
      allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
      viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
      cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
      originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
      responseHeadersPolicy: this.headers,
      compress: true,
    };
    this.distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: 'Lifeboat web console and API',
      defaultRootObject: 'index.html',
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      // No minimumProtocolVersion: without a custom certificate CloudFront ignores it (AwsSolutions-CFR4).
      priceClass: cloudfront.PriceClass.PRICE_CLASS_100,
      enableLogging: true,
      logBucket: this.logBucket,
      logFilePrefix: 'cloudfront/',
      defaultBehavior: {
        origin: origins.S3BucketOrigin.withOriginAccessControl(this.bucket),
        allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: this.headers,
        compress: true,
        functionAssociations: [
          { function: this.rewrite, eventType: cloudfront.FunctionEventType.VIEWER_REQUEST },
        ],
      },
      additionalBehaviors: Object.fromEntries(
        apiPathPatterns(props.routes).map((pattern) => [pattern, apiBehaviour]),
      ),
    });
    this.deployments = this.deploy(props);
    new CfnOutput(stack, 'ConsoleUrl', {
      value: `https://${this.distribution.distributionDomainName}/`,
      description: 'Lifeboat web console (the API on the same origin)',
    });
  }

  /**
   * web/ into the bucket: the content-hashed assets first (kept a year, and old ones left for
   * pages loaded before the update), then index.html (revalidated each time), so a new page
   * never names an asset not there yet; the distribution forgets its cached page.
   */
  private deploy(props: ConsoleSiteProps): deploy.BucketDeployment[] {
    const built = existsSync(join(props.webRoot, 'index.html'));
    if (!built && !props.skipBundling) {
      throw new Error(
        `${props.webRoot} holds no built console: run \`npm run build:console\` (infra/app.ts does before synth)`,
      );
    }
    const source = built
      ? deploy.Source.asset(props.webRoot, { exclude: ['.source-hash'] })
      : deploy.Source.data('index.html', '<!doctype html><title>Lifeboat</title><p>console not built</p>');
    const assets = new deploy.BucketDeployment(this, 'DeployAssets', {
      sources: [source],
      destinationBucket: this.bucket,
      include: ['assets/*'],
      exclude: ['*'],
      prune: false,
      cacheControl: [
        deploy.CacheControl.setPublic(),
        deploy.CacheControl.maxAge(Duration.days(365)),
        deploy.CacheControl.immutable(),
      ],
    });
    const page = new deploy.BucketDeployment(this, 'DeployPage', {
      sources: [source],
      destinationBucket: this.bucket,
      exclude: ['assets/*'],
      cacheControl: [deploy.CacheControl.noCache()],
      distribution: this.distribution,
      distributionPaths: ['/', '/index.html'],
    });
    page.node.addDependency(assets);
    return [assets, page];
  }
}
