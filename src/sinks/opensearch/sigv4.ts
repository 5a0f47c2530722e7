// AWS Signature Version 4 for Amazon OpenSearch Service (`es`) and OpenSearch Serverless (`aoss`):
// the client's own signer, with credentials from the AWS SDK's standard chain (environment, shared
// files and profiles, web identity, ECS and EC2 instance roles), as the bucket sources take them.
import { AwsSigv4Signer } from '@opensearch-project/opensearch/aws-v3'

export type AwsService = 'es' | 'aoss'

export type CredentialsProvider = () => Promise<{ accessKeyId: string, secretAccessKey: string, sessionToken?: string }>

/** Client options that sign every request; `credentials` replaces the standard chain (tests). */
export function awsSigv4 (region: string, service: AwsService, credentials?: CredentialsProvider): ReturnType<typeof AwsSigv4Signer> {
  return AwsSigv4Signer({ region, service, ...(credentials ? { getCredentials: credentials } : {}) })
}
