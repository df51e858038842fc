# The internal load balancer in front of the server: HTTPS only (TLS 1.2+, the given ACM
# certificate), reachable from client_cidr_blocks and from the agent and flow runs.

resource "aws_lb" "server" {
  # checkov:skip=CKV_AWS_91: access logs need a log bucket of your organisation's; add access_logs there
  # checkov:skip=CKV2_AWS_28: the load balancer is internal (no internet path); put a WAF in front if you expose it
  name                       = var.name
  internal                   = true
  load_balancer_type         = "application"
  security_groups            = [aws_security_group.lb.id]
  subnets                    = var.private_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  tags                       = local.tags
}

resource "aws_lb_target_group" "server" {
  name        = "${var.name}-server"
  port        = 4200
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  # Long-polling claims and live-log streams stay open; finish requests before a replica goes.
  deregistration_delay = 35

  health_check {
    path                = "/readyz"
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = local.tags
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.server.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.server.arn
  }

  tags = local.tags
}
