# Weir API keys in SSM Parameter Store, SecureString with the kit's key. ECS injects them
# into the services as environment variables (the values never appear in a task definition).
#
# - admin: generated here (the server registers it as its first admin key, WEIR_ADMIN_KEY,
#   when its database has none). Terraform's state holds it: keep the state encrypted.
# - agent and CI: made by the server (`weir keys create`, docs/aws.md step 5) and written
#   here by hand; Terraform creates the parameters and never overwrites their values.

resource "random_id" "admin_key_id" {
  byte_length = 6
}

resource "random_id" "admin_key_secret" {
  byte_length = 32
}

resource "aws_ssm_parameter" "admin_key" {
  name        = local.admin_key_parameter
  description = "Weir's first admin key (registered by the server on an empty database)"
  type        = "SecureString"
  key_id      = aws_kms_key.weir.arn
  value       = "weir_${random_id.admin_key_id.hex}_${random_id.admin_key_secret.hex}"
  tags        = local.tags
}

resource "aws_ssm_parameter" "agent_key" {
  name        = local.agent_key_parameter
  description = "Weir agent-role key of the ECS agent (set by hand: weir keys create --role agent)"
  type        = "SecureString"
  key_id      = aws_kms_key.weir.arn
  value       = "unset: put the output of `weir keys create --name ecs-agent --role agent` here"
  tags        = local.tags

  lifecycle {
    ignore_changes = [value]
  }
}

resource "aws_ssm_parameter" "ci_key" {
  name        = local.ci_key_parameter
  description = "Weir developer key of CI, scoped to project ${var.project} (set by hand: weir keys create --role developer --project ${var.project})"
  type        = "SecureString"
  key_id      = aws_kms_key.weir.arn
  value       = "unset: put the output of `weir keys create --name ci --role developer --project ${var.project}` here"
  tags        = local.tags

  lifecycle {
    ignore_changes = [value]
  }
}
