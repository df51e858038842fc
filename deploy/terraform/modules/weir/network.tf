# Security groups. None has an inbound rule from the internet: the load balancer accepts
# HTTPS from client_cidr_blocks only (private ranges), the server only from the load
# balancer, the database only from the server; the agent and flow runs accept nothing.
# Outbound is HTTPS (AWS APIs, ECR, the load balancer) and PostgreSQL to the database.

resource "aws_security_group" "lb" {
  name        = "${var.name}-lb"
  description = "Weir's internal load balancer: HTTPS from the listed private ranges"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "lb_https" {
  for_each          = toset(var.client_cidr_blocks)
  security_group_id = aws_security_group.lb.id
  description       = "HTTPS from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "lb_to_server" {
  security_group_id            = aws_security_group.lb.id
  description                  = "To the Weir server tasks"
  ip_protocol                  = "tcp"
  from_port                    = 4200
  to_port                      = 4200
  referenced_security_group_id = aws_security_group.server.id
}

resource "aws_security_group" "server" {
  name        = "${var.name}-server"
  description = "Weir server tasks: port 4200 from the load balancer only"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "server_from_lb" {
  security_group_id            = aws_security_group.server.id
  description                  = "API and UI from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = 4200
  to_port                      = 4200
  referenced_security_group_id = aws_security_group.lb.id
}

resource "aws_vpc_security_group_egress_rule" "server_to_db" {
  security_group_id            = aws_security_group.server.id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.db.id
}

resource "aws_vpc_security_group_egress_rule" "server_https" {
  security_group_id = aws_security_group.server.id
  description       = "HTTPS to ECR, CloudWatch Logs, SSM and Secrets Manager (image pull and secrets at start)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_security_group" "db" {
  name        = "${var.name}-db"
  description = "Weir's PostgreSQL: port 5432 from the server tasks only"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "db_from_server" {
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from the Weir server tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.server.id
}

# The agent and the flow runs it starts: no inbound rule at all; outbound HTTPS only (the
# Weir API through the load balancer, ECS, ECR, S3, CloudWatch Logs, SSM, Secrets Manager).
resource "aws_security_group" "tasks" {
  name        = "${var.name}-tasks"
  description = "Weir agent and flow run tasks: no inbound, HTTPS out"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to the Weir API and AWS APIs"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "lb_from_tasks" {
  security_group_id            = aws_security_group.lb.id
  description                  = "HTTPS from the agent and flow runs (they report to the server)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.tasks.id
}
