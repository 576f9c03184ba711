mod t16x16x16 {
    use super::*;
    use cubek_matmul::definition::TilingSchemeBuilder;
    use cubek_std::TileSize;

    fn tile_size(builder: TilingSchemeBuilder) -> TilingSchemeBuilder {
        builder.with_tile_size(TileSize {
            m: 16,
            n: 16,
            k: 16,
        })
    }

    include!("partition.rs");
}

mod t16x8x16 {
    use super::*;
    use cubek_matmul::definition::TilingSchemeBuilder;
    use cubek_std::TileSize;

    fn tile_size(builder: TilingSchemeBuilder) -> TilingSchemeBuilder {
        builder.with_tile_size(TileSize { m: 16, n: 8, k: 16 })
    }

    include!("partition.rs");
}
