# Roles with least privilege. Each policy is a JSON file in deploy/iam (read it there),
# filled with this environment's names. Who may do what, and why: docs/aws.md, "Who may do
# what".

locals {
  ecs_tasks_trust = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ecs-tasks.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })

  common = {
    region     = local.region
    account_id = local.account_id
  }
}

# --- Flow runs -----------------------------------------------------------------------------

# What a flow's code may do: results under the prefix, and the team's data bucket if given.
resource "aws_iam_role" "flow_task" {
  name               = "${var.name}-flow-task"
  description        = "Weir flow runs: the code of the flows"
  assume_role_policy = local.ecs_tasks_trust
  tags               = local.tags
}

resource "aws_iam_role_policy" "flow_task" {
  name = "results"
  role = aws_iam_role.flow_task.id
  policy = templatefile("${local.iam_dir}/flow-task.json", merge(local.common, {
    results_bucket = aws_s3_bucket.results.bucket
    results_prefix = var.results_prefix
    kms_key_arn    = aws_kms_key.weir.arn
  }))
}

resource "aws_iam_role_policy" "flow_data" {
  count  = var.data_bucket == "" ? 0 : 1
  name   = "data-bucket"
  role   = aws_iam_role.flow_task.id
  policy = templatefile("${local.iam_dir}/flow-data.json", { data_bucket = var.data_bucket })
}

# What ECS does to start a flow run: pull the flows image, write its logs, inject the
# project's secrets (ssm:/<name>/<project>/*, secretsmanager:<name>/<project>/*).
resource "aws_iam_role" "flow_execution" {
  name               = "${var.name}-flow-execution"
  description        = "Weir flow runs: what ECS needs to start them"
  assume_role_policy = local.ecs_tasks_trust
  tags               = local.tags
}

resource "aws_iam_role_policy" "flow_execution" {
  name = "start-flow-runs"
  role = aws_iam_role.flow_execution.id
  policy = templatefile("${local.iam_dir}/ecs-task-execution.json", merge(local.common, {
    repository     = aws_ecr_repository.flows.name
    log_group      = aws_cloudwatch_log_group.flows.name
    ssm_prefix     = local.flow_ssm_prefix
    secrets_prefix = local.flow_secrets_prefix
  }))
}

# --- The agent -----------------------------------------------------------------------------

# The agent's own permissions: start weir-* task definitions in this cluster only, watch and
# stop their tasks, pass only the two flow roles, read the flows' log streams. No SSM or
# Secrets Manager: it never sees a secret value.
resource "aws_iam_role" "agent_task" {
  name               = "${var.name}-agent"
  description        = "Weir agent: starts flow runs as ECS tasks in its own cluster"
  assume_role_policy = local.ecs_tasks_trust
  tags               = local.tags
}

resource "aws_iam_role_policy" "agent_task" {
  name = "launch-flow-runs"
  role = aws_iam_role.agent_task.id
  policy = templatefile("${local.iam_dir}/ecs-agent.json", merge(local.common, {
    cluster        = aws_ecs_cluster.weir.name
    task_role      = aws_iam_role.flow_task.name
    execution_role = aws_iam_role.flow_execution.name
    log_group      = aws_cloudwatch_log_group.flows.name
  }))
}

resource "aws_iam_role" "agent_execution" {
  name               = "${var.name}-agent-execution"
  description        = "Weir agent: what ECS needs to start it"
  assume_role_policy = local.ecs_tasks_trust
  tags               = local.tags
}

resource "aws_iam_role_policy" "agent_execution" {
  name = "start-agent"
  role = aws_iam_role.agent_execution.id
  policy = templatefile("${local.iam_dir}/agent-execution.json", merge(local.common, {
    repository    = aws_ecr_repository.weir.name
    log_group     = aws_cloudwatch_log_group.agent.name
    key_parameter = aws_ssm_parameter.agent_key.name
    kms_key_arn   = aws_kms_key.weir.arn
  }))
}

# --- The server ----------------------------------------------------------------------------

# The server calls no AWS API: its task role has no policy at all.
resource "aws_iam_role" "server_task" {
  name               = "${var.name}-server"
  description        = "Weir server: no AWS permissions"
  assume_role_policy = local.ecs_tasks_trust
  tags               = local.tags
}

resource "aws_iam_role" "server_execution" {
  name               = "${var.name}-server-execution"
  description        = "Weir server: what ECS needs to start it"
  assume_role_policy = local.ecs_tasks_trust
  tags               = local.tags
}

resource "aws_iam_role_policy" "server_execution" {
  name = "start-server"
  role = aws_iam_role.server_execution.id
  policy = templatefile("${local.iam_dir}/server-execution.json", merge(local.common, {
    repository    = aws_ecr_repository.weir.name
    log_group     = aws_cloudwatch_log_group.server.name
    key_parameter = aws_ssm_parameter.admin_key.name
    secret_arn    = aws_db_instance.weir.master_user_secret[0].secret_arn
    kms_key_arn   = aws_kms_key.weir.arn
  }))
}

# --- CI ------------------------------------------------------------------------------------

# CI pushes the flows image, registers weir-* task definitions naming the two flow roles,
# and reads its developer key (scoped to one project) to call Weir's API. It cannot start
# tasks, read other parameters or touch the infrastructure: terraform apply runs with the
# separate bootstrap role (docs/aws.md step 2).
resource "aws_iam_role" "ci" {
  count       = length(var.ci_principal_arns) == 0 ? 0 : 1
  name        = "${var.name}-ci-${var.project}"
  description = "Weir CI of project ${var.project}: push the flows image, register task definitions, deploy"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { AWS = var.ci_principal_arns }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy" "ci_task_definitions" {
  count = length(aws_iam_role.ci)
  name  = "register-task-definitions"
  role  = aws_iam_role.ci[0].id
  policy = templatefile("${local.iam_dir}/ecs-ci.json", merge(local.common, {
    task_role      = aws_iam_role.flow_task.name
    execution_role = aws_iam_role.flow_execution.name
  }))
}

resource "aws_iam_role_policy" "ci_deploy" {
  count = length(aws_iam_role.ci)
  name  = "push-and-deploy"
  role  = aws_iam_role.ci[0].id
  policy = templatefile("${local.iam_dir}/ci-deploy.json", merge(local.common, {
    repository       = aws_ecr_repository.flows.name
    ci_key_parameter = aws_ssm_parameter.ci_key.name
    kms_key_arn      = aws_kms_key.weir.arn
  }))
}
