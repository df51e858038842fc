# Outputs of the Weir module. Every output is listed in docs/aws.md ("Module outputs"); a
# test keeps the two in agreement.

output "server_url" {
  description = "The Weir API and UI (WEIR_API_URL for the CLI, CI and the agent)."
  value       = local.server_url
}

output "load_balancer_dns_name" {
  description = "DNS name of the internal load balancer: point server_domain_name at it."
  value       = aws_lb.server.dns_name
}

output "cluster_name" {
  description = "The ECS cluster the server, the agent and the flow runs run in."
  value       = aws_ecs_cluster.weir.name
}

output "flow_task_role_arn" {
  description = "Role of the flows' code (results bucket, data bucket): the task role of flow runs."
  value       = aws_iam_role.flow_task.arn
}

output "flow_execution_role_arn" {
  description = "Role ECS uses to start flow runs (image pull, logs, the project's secrets)."
  value       = aws_iam_role.flow_execution.arn
}

output "agent_role_arn" {
  description = "Task role of the agent (starts and watches flow runs in the cluster)."
  value       = aws_iam_role.agent_task.arn
}

output "ci_role_arn" {
  description = "Role CI assumes to push the flows image, register task definitions and read its Weir key (empty without ci_principal_arns)."
  value       = length(aws_iam_role.ci) == 0 ? "" : aws_iam_role.ci[0].arn
}

output "results_bucket" {
  description = "The results bucket (set WEIR_RESULTS_URL=s3://<bucket>/<results_prefix> for flow runs)."
  value       = aws_s3_bucket.results.bucket
}

output "weir_repository_url" {
  description = "ECR repository of the weir image (server and agent)."
  value       = aws_ecr_repository.weir.repository_url
}

output "flows_repository_url" {
  description = "ECR repository CI pushes the flows image to."
  value       = aws_ecr_repository.flows.repository_url
}

output "flow_subnet_ids" {
  description = "Subnets of flow run tasks (the agent's defaults)."
  value       = var.private_subnet_ids
}

output "flow_security_group_id" {
  description = "Security group of the agent and flow run tasks (no inbound rule)."
  value       = aws_security_group.tasks.id
}

output "flow_log_group" {
  description = "CloudWatch log group of flow runs."
  value       = aws_cloudwatch_log_group.flows.name
}

output "admin_key_parameter" {
  description = "SSM parameter holding the first admin key."
  value       = aws_ssm_parameter.admin_key.name
}

output "agent_key_parameter" {
  description = "SSM parameter to put the agent's key in (docs/aws.md step 5)."
  value       = aws_ssm_parameter.agent_key.name
}

output "ci_key_parameter" {
  description = "SSM parameter to put CI's developer key in (docs/aws.md step 5)."
  value       = aws_ssm_parameter.ci_key.name
}

output "flow_secrets_prefixes" {
  description = "Where flows' secrets go: SSM parameters under the first, Secrets Manager secrets under the second."
  value       = [local.flow_ssm_prefix, local.flow_secrets_prefix]
}
