"""Generic case: a bucket in a non-EU region (RES-01, BKP-02), through the default provider."""
import pulumi_aws as aws

aws.s3.Bucket("us-bucket", tags={"client": "corpus"})
