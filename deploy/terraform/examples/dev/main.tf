# The `dev` environment of the Weir platform, as in docs/aws.md: the VPC and private subnets
# come from the SSM parameters the tutorial's account already has (/Shared/Vpc,
# /Shared/PrivateSubnets), everything else from the module.
#
#     terraform init && terraform apply -var certificate_arn=arn:aws:acm:…
#
# State: this example keeps it locally; for a team, configure an S3 backend (encrypted, with
# locking) in backend.tf before the first apply.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = { "weir:managed-by" = "terraform" }
  }
}

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}

variable "certificate_arn" {
  description = "ACM certificate of the server's host name (docs/aws.md step 3)."
  type        = string
}

variable "server_domain_name" {
  description = "Host name of the server, covered by the certificate, e.g. weir.dev.internal.example.com."
  type        = string
}

variable "client_cidr_blocks" {
  description = "Private ranges that may reach Weir (your VPC's and your VPN's)."
  type        = list(string)
}

variable "weir_image_tag" {
  description = "Tag of the weir image pushed to the module's weir repository (docs/aws.md step 4)."
  type        = string
  default     = "latest"
}

variable "data_bucket" {
  description = "The bucket s3_download reads (the tutorial's dataLearningBucketName)."
  type        = string
  default     = ""
}

variable "ci_principal_arns" {
  description = "Who may assume the CI role: your CodeBuild service role or GitHub OIDC role ARN."
  type        = list(string)
  default     = []
}

data "aws_ssm_parameter" "vpc" {
  name = "/Shared/Vpc"
}

data "aws_ssm_parameter" "private_subnets" {
  name = "/Shared/PrivateSubnets"
}

module "weir" {
  source = "../../modules/weir"

  name               = "weir-dev"
  project            = "dev"
  vpc_id             = nonsensitive(data.aws_ssm_parameter.vpc.value)
  private_subnet_ids = split(",", nonsensitive(data.aws_ssm_parameter.private_subnets.value))
  client_cidr_blocks = var.client_cidr_blocks
  certificate_arn    = var.certificate_arn
  server_domain_name = var.server_domain_name
  weir_image_tag     = var.weir_image_tag
  data_bucket        = var.data_bucket
  ci_principal_arns  = var.ci_principal_arns

  # A dev environment may be destroyed: see docs/aws.md, "Cleaning up".
  deletion_protection = true
}

output "server_url" {
  description = "The Weir API and UI."
  value       = module.weir.server_url
}

output "load_balancer_dns_name" {
  description = "Point server_domain_name's DNS record here."
  value       = module.weir.load_balancer_dns_name
}

output "weir_repository_url" {
  description = "Push the weir image here."
  value       = module.weir.weir_repository_url
}

output "flows_repository_url" {
  description = "CI pushes the flows image here."
  value       = module.weir.flows_repository_url
}

output "flow_task_role_arn" {
  description = "Task role of flow runs."
  value       = module.weir.flow_task_role_arn
}

output "flow_execution_role_arn" {
  description = "Execution role of flow runs."
  value       = module.weir.flow_execution_role_arn
}

output "agent_role_arn" {
  description = "Task role of the agent."
  value       = module.weir.agent_role_arn
}

output "ci_role_arn" {
  description = "Role CI assumes."
  value       = module.weir.ci_role_arn
}

output "results_bucket" {
  description = "The results bucket."
  value       = module.weir.results_bucket
}

output "cluster_name" {
  description = "The ECS cluster."
  value       = module.weir.cluster_name
}

output "flow_subnet_ids" {
  description = "Subnets of flow runs."
  value       = module.weir.flow_subnet_ids
}

output "flow_security_group_id" {
  description = "Security group of flow runs."
  value       = module.weir.flow_security_group_id
}

output "admin_key_parameter" {
  description = "SSM parameter of the first admin key."
  value       = module.weir.admin_key_parameter
}

output "agent_key_parameter" {
  description = "SSM parameter of the agent's key."
  value       = module.weir.agent_key_parameter
}

output "ci_key_parameter" {
  description = "SSM parameter of CI's key."
  value       = module.weir.ci_key_parameter
}
