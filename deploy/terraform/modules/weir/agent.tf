# The agent's command line: its queues, its limit, and the kind of runs it launches (ECS
# tasks). The ECS launcher's cluster, subnets and security group are this module's
# (aws_ecs_cluster.weir, var.private_subnet_ids, aws_security_group.tasks): see docs/aws.md,
# "Known limits", for how the agent learns them.

locals {
  agent_command = [
    "agent",
    "--queue", join(",", var.agent_queues),
    "--limit", tostring(var.agent_limit),
    "--launchers", "ecs",
  ]
}
