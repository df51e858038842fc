# The agent's command line: its queues, its limit, and the ECS launcher's settings: this
# cluster, the flow runs' private subnets and security group (no public IP, the default).

locals {
  agent_command = [
    "agent",
    "--queue", join(",", var.agent_queues),
    "--limit", tostring(var.agent_limit),
    "--launchers", "ecs",
    "--ecs-cluster", aws_ecs_cluster.weir.name,
    "--ecs-subnets", join(",", var.private_subnet_ids),
    "--ecs-security-groups", aws_security_group.tasks.id,
  ]
}
