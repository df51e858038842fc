# The Weir platform on AWS: the server (Fargate, behind an internal HTTPS load balancer, on
# RDS PostgreSQL), the agent (Fargate, launching each flow run as an ECS task), the roles of
# flow runs, the results bucket, log groups, the keys in SSM. Everything in existing private
# subnets; nothing reachable from the internet. See docs/aws.md.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name

  tags = merge({ "weir:environment" = var.name }, var.tags)

  # SSM parameters holding Weir API keys (SecureString, encrypted with the kit's key).
  admin_key_parameter = "/${var.name}/keys/admin"
  agent_key_parameter = "/${var.name}/keys/agent"
  ci_key_parameter    = "/${var.name}/keys/ci-${var.project}"

  # Where flows' secret references live: ssm:/<name>/<project>/NAME, secretsmanager:<name>/<project>/NAME.
  flow_ssm_prefix     = "/${var.name}/${var.project}"
  flow_secrets_prefix = "${var.name}/${var.project}"

  server_url = "https://${var.server_domain_name}"

  # Every IAM policy is a readable JSON file in deploy/iam, filled here.
  iam_dir = "${path.module}/../../../iam"
}

# One customer-managed key for everything the kit stores: logs, parameters, the database and
# its secret, the results bucket, the image repositories.
resource "aws_kms_key" "weir" {
  description             = "${var.name}: Weir's logs, keys, database and results"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "TheAccountAdministersTheKeyThroughIam"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncryptsTheKitsLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${data.aws_partition.current.partition}:logs:${local.region}:${local.account_id}:log-group:/${var.name}/*"
          }
        }
      }
    ]
  })
  tags = local.tags
}

resource "aws_kms_alias" "weir" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.weir.key_id
}
