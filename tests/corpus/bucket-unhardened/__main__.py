"""Generic case: a bucket without encryption, versioning or public-access block (BKP-04)."""
import pulumi
import pulumi_aws as aws

aws.s3.Bucket("bare", tags={"client": "corpus"}, opts=pulumi.ResourceOptions(protect=True))
