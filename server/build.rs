// `sqlx::migrate!` embeds the migration files at compile time; without this a new migration file
// is not picked up until some source file changes (the sqlx documentation's recommendation).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=migrations-pg");
}
