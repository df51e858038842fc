# Inputs of the Weir module. Every variable is listed, with its meaning, in docs/aws.md
# ("Module inputs"); a test (deploy/tests/check_terraform.py) keeps the two in agreement.

variable "name" {
  description = "Prefix of every resource name (cluster, services, roles, bucket, parameters), e.g. weir-dev. Lowercase letters, digits and -."
  type        = string
  default     = "weir-dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name: 2-31 lowercase letters, digits and -, starting with a letter."
  }
}

variable "project" {
  description = "The Weir project this environment's CI deploys into (dev, main). The CI key is scoped to it and its flows' secrets live under /<name>/<project>/ in SSM and Secrets Manager."
  type        = string
  default     = "dev"
}

variable "vpc_id" {
  description = "The existing VPC to run in (the tutorial's /Shared/Vpc)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Existing private subnets (at least two, in different availability zones) for the load balancer, the database, the services and the flow runs (the tutorial's /Shared/PrivateSubnets). They need a NAT gateway or VPC endpoints to reach ECR, CloudWatch Logs, SSM, Secrets Manager and S3."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "private_subnet_ids: give at least two subnets in different availability zones (the load balancer and the database need two)."
  }
}

variable "client_cidr_blocks" {
  description = "Address ranges allowed to reach the Weir API and UI on the internal load balancer (port 443), e.g. the VPC's range and your VPN's. Never 0.0.0.0/0: the load balancer is internal."
  type        = list(string)

  validation {
    condition     = !contains(var.client_cidr_blocks, "0.0.0.0/0")
    error_message = "client_cidr_blocks: 0.0.0.0/0 is refused; list the private ranges that may reach Weir."
  }
}

variable "certificate_arn" {
  description = "ACM certificate for the load balancer's HTTPS listener (a certificate for server_domain_name, or one imported into ACM)."
  type        = string
}

variable "server_domain_name" {
  description = "The host name clients, the agent and flow runs use for the server, covered by certificate_arn (TLS is verified); point its DNS record at the output load_balancer_dns_name (e.g. in a Route 53 private zone)."
  type        = string
}

variable "weir_image_tag" {
  description = "Tag of the weir image (server and agent) in the module's weir ECR repository (output weir_repository_url)."
  type        = string
  default     = "latest"
}

variable "agent_queues" {
  description = "Work queues the agent takes runs from."
  type        = list(string)
  default     = ["default"]
}

variable "agent_limit" {
  description = "Most runs the agent has running at once."
  type        = number
  default     = 10
}

variable "server_cpu" {
  description = "Fargate CPU units of the server task (256 = 0.25 vCPU)."
  type        = number
  default     = 256
}

variable "server_memory" {
  description = "Fargate memory of the server task, MiB (valid with server_cpu)."
  type        = number
  default     = 512
}

variable "server_count" {
  description = "Server replicas behind the load balancer (all share the PostgreSQL database)."
  type        = number
  default     = 1
}

variable "db_instance_class" {
  description = "RDS instance class of the PostgreSQL database."
  type        = string
  default     = "db.t4g.micro"
}

variable "db_allocated_storage" {
  description = "Storage of the database, GiB."
  type        = number
  default     = 20
}

variable "db_multi_az" {
  description = "Run the database in two availability zones (recommended for production)."
  type        = bool
  default     = false
}

variable "db_backup_retention_days" {
  description = "Days of automated database backups."
  type        = number
  default     = 7
}

variable "deletion_protection" {
  description = "Protect the database and the load balancer from deletion. Set false before terraform destroy (see docs/aws.md, Cleaning up)."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the server's, agent's and flow runs' logs."
  type        = number
  default     = 365
}

variable "results_prefix" {
  description = "Prefix of flow results in the results bucket (flows write <prefix>/<project>/<run>/...)."
  type        = string
  default     = "results"
}

variable "data_bucket" {
  description = "Name of an existing S3 bucket the flows may read and write (the tutorial's dataLearningBucketName, which s3_download reads). Empty: none."
  type        = string
  default     = ""
}

variable "ci_principal_arns" {
  description = "IAM principals that may assume the CI role (e.g. your CodeBuild service role, or a GitHub OIDC role). Empty: no CI role is created."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
