# The ECS cluster, and the server and the agent as Fargate services in the private subnets.
# Flow runs are not services: the agent starts each one as a task of a weir-* task
# definition that `weir deploy` registered from CI.

resource "aws_ecs_cluster" "weir" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = local.tags
}

resource "aws_ecs_cluster_capacity_providers" "weir" {
  cluster_name       = aws_ecs_cluster.weir.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]
}

locals {
  weir_image = "${aws_ecr_repository.weir.repository_url}:${var.weir_image_tag}"

  # The server: PostgreSQL from RDS (password injected as PGPASSWORD, which Weir's
  # PostgreSQL client reads when the URL has none), the first admin key from SSM.
  server_container = {
    name                   = "server"
    image                  = local.weir_image
    essential              = true
    readonlyRootFilesystem = true
    command                = ["server", "--bind", "0.0.0.0:4200"]
    portMappings           = [{ containerPort = 4200, protocol = "tcp" }]
    environment = [
      { name = "WEIR_DB", value = "postgres://${aws_db_instance.weir.username}@${aws_db_instance.weir.address}:${aws_db_instance.weir.port}/${aws_db_instance.weir.db_name}" },
      { name = "WEIR_HOME", value = "/tmp/weir" },
    ]
    secrets = [
      { name = "PGPASSWORD", valueFrom = "${aws_db_instance.weir.master_user_secret[0].secret_arn}:password::" },
      { name = "WEIR_ADMIN_KEY", valueFrom = aws_ssm_parameter.admin_key.arn },
    ]
    mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp" }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.server.name
        "awslogs-region"        = local.region
        "awslogs-stream-prefix" = "server"
      }
    }
  }

  # The agent: claims runs from its queues and starts each as an ECS task in this cluster,
  # in the private subnets, with the tasks' security group and no public IP.
  agent_container = {
    name                   = "agent"
    image                  = local.weir_image
    essential              = true
    readonlyRootFilesystem = true
    command                = local.agent_command
    environment = [
      { name = "WEIR_API_URL", value = local.server_url },
      { name = "WEIR_HOME", value = "/tmp/weir" },
      # Where flow runs persist results (the flow task role may write only there).
      { name = "WEIR_RESULTS_URL", value = "s3://${aws_s3_bucket.results.bucket}/${var.results_prefix}" },
    ]
    secrets = [
      { name = "WEIR_API_KEY", valueFrom = aws_ssm_parameter.agent_key.arn },
    ]
    mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp" }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.agent.name
        "awslogs-region"        = local.region
        "awslogs-stream-prefix" = "agent"
      }
    }
  }
}

resource "aws_ecs_task_definition" "server" {
  family                   = "${var.name}-server"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.server_cpu
  memory                   = var.server_memory
  task_role_arn            = aws_iam_role.server_task.arn
  execution_role_arn       = aws_iam_role.server_execution.arn
  container_definitions    = jsonencode([local.server_container])

  volume {
    name = "tmp"
  }

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  tags = local.tags
}

resource "aws_ecs_service" "server" {
  name                   = "${var.name}-server"
  cluster                = aws_ecs_cluster.weir.id
  task_definition        = aws_ecs_task_definition.server.arn
  desired_count          = var.server_count
  launch_type            = "FARGATE"
  enable_execute_command = false
  propagate_tags         = "SERVICE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.server.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.server.arn
    container_name   = "server"
    container_port   = 4200
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  depends_on = [aws_lb_listener.https]
  tags       = local.tags
}

resource "aws_ecs_task_definition" "agent" {
  family                   = "${var.name}-agent"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  task_role_arn            = aws_iam_role.agent_task.arn
  execution_role_arn       = aws_iam_role.agent_execution.arn
  container_definitions    = jsonencode([local.agent_container])

  volume {
    name = "tmp"
  }

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  tags = local.tags
}

resource "aws_ecs_service" "agent" {
  name                   = "${var.name}-agent"
  cluster                = aws_ecs_cluster.weir.id
  task_definition        = aws_ecs_task_definition.agent.arn
  desired_count          = 1
  launch_type            = "FARGATE"
  enable_execute_command = false
  propagate_tags         = "SERVICE"

  # Blue/green by replacement: the new agent starts, takes over the old one's ECS tasks
  # (re-adopted by startedBy), then the old one drains.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = local.tags
}
