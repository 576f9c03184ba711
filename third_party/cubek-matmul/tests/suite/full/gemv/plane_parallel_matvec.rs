#[test]
pub fn test_plane_parallel_matvec_very_small_square_col_major() {
    let case = GemvTestCase {
        out_dim: 128,
        k_dim: 128,
        vec_batch: 1,
        mat_batch: 1,
        mat_layout: MatrixLayout::ColMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_k_larger_than_n_col_major() {
    let case = GemvTestCase {
        out_dim: 128,
        k_dim: 256,
        vec_batch: 1,
        mat_batch: 1,
        mat_layout: MatrixLayout::ColMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_k_smaller_than_n_col_major() {
    let case = GemvTestCase {
        out_dim: 256,
        k_dim: 128,
        vec_batch: 1,
        mat_batch: 1,
        mat_layout: MatrixLayout::ColMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_small_square_col_major() {
    let case = GemvTestCase {
        out_dim: 256,
        k_dim: 256,
        vec_batch: 1,
        mat_batch: 1,
        mat_layout: MatrixLayout::ColMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_large_col_major() {
    let case = GemvTestCase {
        out_dim: 1280,
        k_dim: 1280,
        vec_batch: 1,
        mat_batch: 1,
        mat_layout: MatrixLayout::ColMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_large_broadcast_lhs_col_major() {
    let case = GemvTestCase {
        out_dim: 1280,
        k_dim: 1280,
        vec_batch: 1,
        mat_batch: 2,
        mat_layout: MatrixLayout::ColMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_large_broadcast_col_major() {
    let case = GemvTestCase {
        out_dim: 1280,
        k_dim: 1280,
        vec_batch: 2,
        mat_batch: 1,
        mat_layout: MatrixLayout::ColMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_large_batched_col_major() {
    let case = GemvTestCase {
        out_dim: 1280,
        k_dim: 1280,
        vec_batch: 2,
        mat_batch: 2,
        mat_layout: MatrixLayout::ColMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_uneven_shape_col_major() {
    let case = GemvTestCase {
        out_dim: 32,
        k_dim: 29,
        vec_batch: 1,
        mat_batch: 1,
        mat_layout: MatrixLayout::ColMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_not_same_vectorization_col_major() {
    let case = GemvTestCase {
        out_dim: 128,
        k_dim: 32,
        vec_batch: 1,
        mat_batch: 1,
        mat_layout: MatrixLayout::ColMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_very_small_square_row_major() {
    let case = GemvTestCase {
        out_dim: 128,
        k_dim: 128,
        vec_batch: 1,
        mat_batch: 1,
        mat_layout: MatrixLayout::RowMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_k_larger_than_n_row_major() {
    let case = GemvTestCase {
        out_dim: 128,
        k_dim: 256,
        vec_batch: 1,
        mat_batch: 1,
        mat_layout: MatrixLayout::RowMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_k_smaller_than_n_row_major() {
    let case = GemvTestCase {
        out_dim: 256,
        k_dim: 128,
        vec_batch: 1,
        mat_batch: 1,
        mat_layout: MatrixLayout::RowMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_small_square_row_major() {
    let case = GemvTestCase {
        out_dim: 256,
        k_dim: 256,
        vec_batch: 1,
        mat_batch: 1,
        mat_layout: MatrixLayout::RowMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_large_row_major() {
    let case = GemvTestCase {
        out_dim: 1280,
        k_dim: 1280,
        vec_batch: 1,
        mat_batch: 1,
        mat_layout: MatrixLayout::RowMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_large_broadcast_lhs_row_major() {
    let case = GemvTestCase {
        out_dim: 1280,
        k_dim: 1280,
        vec_batch: 1,
        mat_batch: 2,
        mat_layout: MatrixLayout::RowMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_large_broadcast_row_major() {
    let case = GemvTestCase {
        out_dim: 1280,
        k_dim: 1280,
        vec_batch: 2,
        mat_batch: 1,
        mat_layout: MatrixLayout::RowMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_large_batched_row_major() {
    let case = GemvTestCase {
        out_dim: 1280,
        k_dim: 1280,
        vec_batch: 2,
        mat_batch: 2,
        mat_layout: MatrixLayout::RowMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_uneven_shape_row_major() {
    let case = GemvTestCase {
        out_dim: 32,
        k_dim: 29,
        vec_batch: 1,
        mat_batch: 1,
        mat_layout: MatrixLayout::RowMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}

#[test]
pub fn test_plane_parallel_matvec_not_same_vectorization_row_major() {
    let case = GemvTestCase {
        out_dim: 128,
        k_dim: 32,
        vec_batch: 1,
        mat_batch: 1,
        mat_layout: MatrixLayout::RowMajor,
        elems: elems(),
        strategy: Strategy::GemvPlaneParallel(BlueprintStrategy::Inferred(Default::default())),
        kind: GemvKind::MatVec,
    }
    .test();
}
