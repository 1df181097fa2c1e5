"""`etl-assets cloud`: create, inspect and delete the AWS resources the code location runs on."""
