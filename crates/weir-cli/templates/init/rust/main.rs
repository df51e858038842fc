//! An example flows binary: `flows describe` lists the flows, `flows run hello --param
//! items=5` runs one locally (with `WEIR_API_URL` set, it reports to that server).

use weir::prelude::*;

/// Fetches the items (here: the numbers 1..=items).
#[task(retries = 2, retry_delay = "1s")]
async fn extract(items: u32) -> anyhow::Result<Vec<u64>> {
    Ok((1..=u64::from(items)).collect())
}

/// Squares one item.
#[task]
async fn square(x: u64) -> anyhow::Result<u64> {
    Ok(x * x)
}

/// Loads the values (here: sums them).
#[task(persist_result = true)]
async fn load(values: Vec<u64>) -> anyhow::Result<u64> {
    Ok(values.iter().sum())
}

/// Squares 1..=items in parallel and sums them.
#[flow]
async fn hello(#[param(default = 10)] items: u32) -> anyhow::Result<u64> {
    let data = extract(items).await?;
    let squares = weir::map(data, square).await?;
    load(squares).await
}

weir::main!(hello);
