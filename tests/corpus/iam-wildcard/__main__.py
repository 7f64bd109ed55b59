"""Generic case: an IAM policy with `*` actions or resources (BKP-05)."""
import json

import pulumi_aws as aws

aws.iam.Policy("everything", tags={"client": "corpus"}, policy=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}))
