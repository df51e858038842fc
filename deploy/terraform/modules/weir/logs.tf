# CloudWatch log groups, encrypted, with retention: the server's, the agent's, and the flow
# runs' (read by the agent only to diagnose a task that died without reporting itself).

resource "aws_cloudwatch_log_group" "server" {
  name              = "/${var.name}/server"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.weir.arn
  tags              = local.tags
}

resource "aws_cloudwatch_log_group" "agent" {
  name              = "/${var.name}/agent"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.weir.arn
  tags              = local.tags
}

resource "aws_cloudwatch_log_group" "flows" {
  name              = "/${var.name}/flows"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.weir.arn
  tags              = local.tags
}
