# PostgreSQL on RDS: encrypted with the kit's key, in the private subnets, not publicly
# accessible, reachable only from the server tasks. RDS generates the master password and
# keeps it in Secrets Manager (encrypted with the kit's key, rotated by RDS); ECS injects it
# into the server as PGPASSWORD, so it never appears in a task definition or in Terraform.

resource "aws_db_subnet_group" "weir" {
  name       = var.name
  subnet_ids = var.private_subnet_ids
  tags       = local.tags
}

resource "aws_db_parameter_group" "weir" {
  name   = var.name
  family = "postgres16"

  # Weir's PostgreSQL client is built without TLS for now, so the database must accept
  # unencrypted connections; they stay inside the VPC, between the server's and the
  # database's security groups.
  parameter {
    name  = "rds.force_ssl"
    value = "0"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  tags = local.tags
}

resource "aws_db_instance" "weir" {
  # checkov:skip=CKV2_AWS_69: Weir's PostgreSQL client has no TLS yet (see the parameter group); traffic stays inside the VPC between two security groups
  # checkov:skip=CKV_AWS_118: enhanced monitoring is an optional cost; CloudWatch's standard RDS metrics remain
  # checkov:skip=CKV_AWS_157: multi-AZ is a variable (db_multi_az), off by default for a dev environment
  # checkov:skip=CKV_AWS_161: the server authenticates with the RDS-managed password from Secrets Manager; IAM authentication would need a token refresher in Weir
  identifier     = var.name
  engine         = "postgres"
  engine_version = "16"

  instance_class        = var.db_instance_class
  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_allocated_storage * 5
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.weir.arn

  db_name  = "weir"
  username = "weir"
  # RDS generates the password and keeps it in Secrets Manager.
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.weir.arn

  db_subnet_group_name   = aws_db_subnet_group.weir.name
  parameter_group_name   = aws_db_parameter_group.weir.name
  vpc_security_group_ids = [aws_security_group.db.id]
  publicly_accessible    = false
  multi_az               = var.db_multi_az

  backup_retention_period    = var.db_backup_retention_days
  copy_tags_to_snapshot      = true
  deletion_protection        = var.deletion_protection
  skip_final_snapshot        = false
  final_snapshot_identifier  = "${var.name}-final"
  auto_minor_version_upgrade = true

  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.weir.arn
  performance_insights_retention_period = 7

  tags = local.tags
}
